"""`smartbins flash`: MicroPython and the smartbins firmware onto a device over USB."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
from pathlib import Path

from smartbins.deviceops import DeviceError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"


def register(sub: argparse._SubParsersAction) -> None:
    fl = sub.add_parser(
        "flash",
        help="Write MicroPython and the smartbins firmware to a device over USB.",
        description="Erase the ESP32, write the MicroPython image you supply (esptool), then "
        "copy firmware/ and the device's config.json (mpremote). --dry-run prints the exact "
        "commands instead.",
    )
    fl.add_argument("--port", required=True, help="Serial port, e.g. /dev/ttyUSB0.")
    fl.add_argument("--firmware", required=True, help="MicroPython image for the ESP32 (.bin).")
    fl.add_argument("--config", help="The device's config.json (from `smartbins provision`).")
    fl.add_argument("--chip", default="esp32", help="esptool chip name. Default: esp32.")
    fl.add_argument("--baud", type=int, default=460800, help="Baud rate. Default: 460800.")
    fl.add_argument("--dry-run", action="store_true", help="Print the commands, run nothing.")
    fl.set_defaults(func=cmd_flash)


def flash_commands(
    port: str, image: Path, config: Path | None, chip: str = "esp32", baud: int = 460800
) -> list[list[str]]:
    """The exact commands `smartbins flash` runs, in order."""
    esptool = shutil.which("esptool.py") or shutil.which("esptool") or "esptool.py"
    mpremote = shutil.which("mpremote") or "mpremote"
    base = [esptool, "--chip", chip, "--port", port, "--baud", str(baud)]
    cmds = [
        [*base, "erase_flash"],
        [*base, "write_flash", "-z", "0x1000", str(image)],
    ]
    files = sorted(f for f in FIRMWARE_DIR.glob("*.py") if f.name not in ("hw_fake.py",))
    cp = [mpremote, "connect", port, "fs", "cp", *(str(f) for f in files), ":"]
    cmds.append(cp)
    if config is not None:
        cmds.append([mpremote, "connect", port, "fs", "cp", str(config), ":config.json"])
    cmds.append([mpremote, "connect", port, "reset"])
    return cmds


_FLASH_HINTS = (
    "check the USB cable (a data cable, not a charge-only one), that --port is the device "
    "(ls /dev/ttyUSB* /dev/ttyACM*), that nothing else holds the port (close serial monitors), "
    "and if esptool cannot connect, hold the BOOT button while it starts"
)


def cmd_flash(args: argparse.Namespace) -> int:
    image = Path(args.firmware)
    config = Path(args.config) if args.config else None
    cmds = flash_commands(args.port, image, config, args.chip, args.baud)
    if args.dry_run:
        for c in cmds:
            print(shlex.join(c))
        return 0
    if not image.is_file():
        raise DeviceError(f"{image}: no such MicroPython image (download one for {args.chip})")
    if config is not None and not config.is_file():
        raise DeviceError(f"{config}: no such config.json (run `smartbins provision` first)")
    for tool in (cmds[0][0], cmds[2][0]):
        if shutil.which(tool) is None:
            raise DeviceError(f"{tool} is not installed: pip install esptool mpremote")
    for n, c in enumerate(cmds, 1):
        print(f"[{n}/{len(cmds)}] {shlex.join(c)}", flush=True)
        if subprocess.run(c).returncode != 0:
            raise DeviceError(f"step {n} failed: {_FLASH_HINTS}")
    print("flashed; the device starts its first wake now")
    return 0
