"""The dashboard's part of the API's config file (``[dashboard]``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class DashboardSettings:
    """``[dashboard]`` in the API's config file."""

    #: A raster tile URL template (``https://tiles.example.org/{z}/{x}/{y}.png``) drawn under the
    #: map. Empty (the default): the map draws its background from the registry's coordinates
    #: and the page talks to no host but its own.
    tile_url: str = ""

    def __post_init__(self) -> None:
        if self.tile_url:
            parts = urlsplit(self.tile_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"tile_url: {self.tile_url!r} must be an http(s) URL")
            missing = [k for k in ("{z}", "{x}", "{y}") if k not in self.tile_url]
            if missing:
                raise ValueError(f"tile_url: {self.tile_url!r} lacks {', '.join(missing)}")
