"""Build the ``Device`` that stands for the scoring algorithm (author of every result), pure."""

from __future__ import annotations

from fhir.resources.R4B.device import Device

from fhir_service.mapping.observation import RESULT_IDENTIFIER_SYSTEM

#: Identifier system of the algorithm Device (value ``{name}/{version}``).
DEVICE_IDENTIFIER_SYSTEM = RESULT_IDENTIFIER_SYSTEM.replace("/result", "/device")


def device_identifier(name: str, version: str) -> str:
    """Stable identifier value of one algorithm version (one Device per version)."""
    return f"{name}/{version}"


def build_device(name: str, version: str) -> Device:
    """The algorithm as a FHIR R4 Device: ``deviceName`` (type ``model-name``) and ``version``.

    Parameters
    ----------
    name
        The algorithm's name, e.g. ``cac-fhir``.
    version
        Its version (package version and scoring parameters profile).
    """
    return Device.model_validate(
        {
            "resourceType": "Device",
            "identifier": [
                {"system": DEVICE_IDENTIFIER_SYSTEM, "value": device_identifier(name, version)}
            ],
            "status": "active",
            "deviceName": [{"name": name, "type": "model-name"}],
            "type": {"text": "Coronary artery calcium scoring software"},
            "version": [{"value": version}],
        }
    )
