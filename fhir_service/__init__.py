"""fhir_service package."""
