"""dicom_io package."""
