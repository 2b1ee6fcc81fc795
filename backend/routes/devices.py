"""Devices: list, read, provision, change config and firmware, calibrate, move and revoke,
through smartbins.provisioning and smartbins.deviceops (the technicians' CLI calls the same)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from backend import schemas
from backend.deps import RegistryDep, SettingsDep, Technician, Viewer
from backend.routes.common import ERRORS, device_public, get_bin, get_device
from backend.settings import Settings
from smartbins import assets, deviceops, provisioning
from smartbins import protocol as p
from smartbins.deviceops import DeviceError, DeviceSettings
from smartbins.errors import SmartbinsError
from smartbins.passwords import PasswordFile
from smartbins.registry import Registry, now_ms

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["devices"], responses=ERRORS)


def _ops(settings: Settings) -> DeviceSettings:
    s = settings.devices.device_settings(settings.registry.path)
    if s is None:
        raise HTTPException(
            503, "device operations are not configured here ([devices] password_file)"
        )
    return s


def _passwords(s: DeviceSettings) -> PasswordFile:
    return PasswordFile(s.password_file, reload=lambda: deviceops.reload_broker(s))


def _publish(s: DeviceSettings, reg: Registry, device_id: str) -> tuple[bool, str]:
    """Publish the device's retained config; the registry is already committed."""
    config = reg.config(device_id, now_ms())
    try:
        deviceops.publish_retained(
            s, *p.encode_message(config), "the change is recorded in the registry"
        )
    except SmartbinsError as e:
        return False, str(e)
    return True, ""


def _thresholds(values: dict[str, float]) -> dict[str, float]:
    """Thresholds in their protocol types: whole numbers for the integer ones."""
    out: dict[str, float] = {}
    for k, v in values.items():
        if deviceops.THRESHOLD_SPECS[k].kind == "int":
            if v != int(v):
                raise HTTPException(400, f"thresholds.{k}: {v!r} must be a whole number")
            out[k] = int(v)
        else:
            out[k] = float(v)
    return out


@router.get("/devices", response_model=list[schemas.DevicePublic])
def list_devices(t: Viewer, reg: RegistryDep) -> list[schemas.DevicePublic]:
    return [device_public(reg, d) for d in assets.municipality_devices(reg, t.municipality_id)]


@router.post("/devices", response_model=schemas.DeviceCredentials, status_code=201)
def provision_device(
    body: schemas.DeviceProvision, t: Technician, reg: RegistryDep, settings: SettingsDep
) -> schemas.DeviceCredentials:
    """Provision a device on a bin: its registry rows and its own broker password, all or
    nothing. The answer carries its config.json with the password: shown this once."""
    s = _ops(settings)
    get_bin(reg, t, body.bin_id)
    req = provisioning.ProvisionRequest(
        body.id, body.bin_id, body.sensor, _thresholds(body.thresholds)
    )
    (cred,) = provisioning.provision(reg, _passwords(s), [req])
    try:
        wifi = deviceops.wifi_password(s)
    except SmartbinsError:
        wifi = ""
    cfg = deviceops.device_config(s, cred, reg, wifi)
    return schemas.DeviceCredentials(device=device_public(reg, body.id), config_json=cfg)


@router.get("/devices/{device_id}", response_model=schemas.DevicePublic)
def read_device(device_id: str, t: Viewer, reg: RegistryDep) -> schemas.DevicePublic:
    get_device(reg, t, device_id)
    return device_public(reg, device_id)


@router.patch("/devices/{device_id}", response_model=schemas.DeviceOperation)
def update_device(
    device_id: str,
    body: schemas.DeviceUpdate,
    t: Technician,
    reg: RegistryDep,
    settings: SettingsDep,
) -> schemas.DeviceOperation:
    """Change thresholds (recorded, then published as the device's retained config) and the
    installed firmware version."""
    d = get_device(reg, t, device_id)
    if body.thresholds and d.state == "decommissioned":
        raise HTTPException(409, f"device {device_id!r} is decommissioned")
    s = _ops(settings) if body.thresholds else None
    with reg.transaction():
        if body.thresholds:
            reg.set_thresholds(device_id, _thresholds(body.thresholds))
        if body.firmware is not None:
            assets.set_firmware(reg, device_id, body.firmware)
    published, note = _publish(s, reg, device_id) if s is not None else (False, "")
    return schemas.DeviceOperation(
        device=device_public(reg, device_id), published=published, note=note
    )


@router.post("/devices/{device_id}/calibration", response_model=schemas.DeviceOperation)
def calibrate_device(
    device_id: str,
    body: schemas.DeviceCalibration,
    t: Technician,
    reg: RegistryDep,
    settings: SettingsDep,
) -> schemas.DeviceOperation:
    get_device(reg, t, device_id)
    s = _ops(settings)
    reg.set_calibration(device_id, body.empty_mm, body.full_mm)
    published, note = _publish(s, reg, device_id)
    return schemas.DeviceOperation(
        device=device_public(reg, device_id), published=published, note=note
    )


@router.post("/devices/{device_id}/move", response_model=schemas.DevicePublic)
def move_device(
    device_id: str, body: schemas.DeviceMove, t: Technician, reg: RegistryDep
) -> schemas.DevicePublic:
    """Put the device on another bin of this municipality; earlier readings stay with the
    old bin."""
    get_device(reg, t, device_id)
    get_bin(reg, t, body.bin_id)
    provisioning.move(reg, device_id, body.bin_id)
    return device_public(reg, device_id)


@router.post("/devices/{device_id}/revoke", response_model=schemas.DevicePublic)
def revoke_device(
    device_id: str, t: Technician, reg: RegistryDep, settings: SettingsDep
) -> schemas.DevicePublic:
    """Take the device's account off the broker at once; its history stays."""
    get_device(reg, t, device_id)
    s = _ops(settings)
    try:
        provisioning.revoke(reg, _passwords(s), device_id)
    except DeviceError as e:  # the password file is written; the broker reload failed
        raise HTTPException(409, str(e)) from None
    return device_public(reg, device_id)
