// The map: bins, depots, disposal sites and routes on a canvas, in Web Mercator.
//
// Offline by default: the background is drawn from the registry's own coordinates (a soft
// footprint around every site, area names at their centres, a graticule and a scale bar).
// With a tile URL template ("https://tiles.example/{z}/{x}/{y}.png") raster tiles are drawn
// underneath instead; that is the only way this page ever talks to another host.

const TILE = 256;

export function mercator(lat, lon) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

function unmercator(x, y) {
  const lon = x * 360 - 180;
  const lat = (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  return [lat, lon];
}

export class CanvasMap {
  constructor(container, { tileUrl = null, onSelect = null, label = (b) => b.id } = {}) {
    this.container = container;
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    container.append(this.canvas);
    this.tip = document.createElement("div");
    this.tip.className = "maptip";
    this.tip.hidden = true;
    container.append(this.tip);
    this.tileUrl = tileUrl;
    this.onSelect = onSelect;
    this.label = label;
    this.tiles = new Map();
    this.bins = [];
    this.places = [];
    this.routes = [];
    this.areas = [];
    this.cx = 0.5; this.cy = 0.5; this.scale = TILE;
    this.background = null;
    this.frame = 0;
    this.listeners();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize(false);
  }

  destroy() { this.resizeObserver.disconnect(); }

  // bins: [{id, lat, lon, colour, ...}]; places: [{kind: "depot"|"disposal", lat, lon, name}];
  // routes: [{colour, points: [[lat, lon], ...]}]; areas: [{name, lat, lon}]
  setData({ bins = this.bins, places = this.places, routes = this.routes, areas = this.areas } = {}) {
    for (const b of bins) [b.x, b.y] = mercator(b.lat, b.lon);
    for (const p of places) [p.x, p.y] = mercator(p.lat, p.lon);
    for (const r of routes) r.xy = r.points.map(([la, lo]) => mercator(la, lo));
    for (const a of areas) [a.x, a.y] = mercator(a.lat, a.lon);
    const footprintChanged = bins !== this.bins;
    this.bins = bins; this.places = places; this.routes = routes; this.areas = areas;
    if (footprintChanged) this.background = null;
    this.draw();
  }

  fit(points = null) {
    const pts = points || [...this.bins, ...this.places];
    if (!pts.length) return;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of pts) {
      x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
    }
    const w = Math.max(x1 - x0, 1e-6), h = Math.max(y1 - y0, 1e-6);
    this.cx = (x0 + x1) / 2; this.cy = (y0 + y1) / 2;
    this.scale = Math.min((this.width * 0.9) / w, (this.height * 0.9) / h, TILE * 2 ** 18);
    this.background = null;
    this.draw();
  }

  resize(redraw = true) {
    const r = this.container.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, r.width); this.height = Math.max(1, r.height);
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    this.background = null;
    if (redraw) this.draw();
  }

  toScreen(x, y) {
    return [(x - this.cx) * this.scale + this.width / 2, (y - this.cy) * this.scale + this.height / 2];
  }

  toWorld(sx, sy) {
    return [(sx - this.width / 2) / this.scale + this.cx, (sy - this.height / 2) / this.scale + this.cy];
  }

  // Where a bin is drawn, in CSS pixels relative to the canvas (tests click there).
  screenPosition(id) {
    const b = this.bins.find((x) => x.id === id);
    return b ? this.toScreen(b.x, b.y) : null;
  }

  binAt(sx, sy, radius = 9) {
    let best = null, bestD = radius * radius;
    for (const b of this.bins) {
      const [x, y] = this.toScreen(b.x, b.y);
      const d = (x - sx) ** 2 + (y - sy) ** 2;
      if (d <= bestD) { best = b; bestD = d; }
    }
    return best;
  }

  listeners() {
    let drag = null;
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      const r = c.getBoundingClientRect();
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) {
          this.cx = drag.cx - dx / this.scale; this.cy = drag.cy - dy / this.scale;
          this.background = null;
          this.schedule();
        }
        return;
      }
      const b = this.binAt(e.clientX - r.left, e.clientY - r.top);
      this.tip.hidden = !b;
      c.style.cursor = b ? "pointer" : "grab";
      if (b) {
        this.tip.textContent = this.label(b);
        this.tip.style.left = `${e.clientX - r.left + 12}px`;
        this.tip.style.top = `${e.clientY - r.top + 12}px`;
      }
    });
    c.addEventListener("pointerup", (e) => {
      const wasClick = drag && !drag.moved;
      drag = null;
      if (!wasClick) return;
      const r = c.getBoundingClientRect();
      const b = this.binAt(e.clientX - r.left, e.clientY - r.top);
      if (b && this.onSelect) this.onSelect(b);
    });
    c.addEventListener("pointerleave", () => { this.tip.hidden = true; });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY / 400));
    }, { passive: false });
  }

  zoomAt(sx, sy, factor) {
    const [wx, wy] = this.toWorld(sx, sy);
    this.scale = Math.max(TILE, Math.min(TILE * 2 ** 20, this.scale * factor));
    this.cx = wx - (sx - this.width / 2) / this.scale;
    this.cy = wy - (sy - this.height / 2) / this.scale;
    this.background = null;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  // ------------------------------------------------------------------ background
  drawBackground() {
    const bg = document.createElement("canvas");
    bg.width = this.canvas.width; bg.height = this.canvas.height;
    const g = bg.getContext("2d");
    g.scale(this.dpr, this.dpr);
    g.fillStyle = "#e4ebee";
    g.fillRect(0, 0, this.width, this.height);
    if (this.tileUrl) this.drawTiles(g);
    else this.drawFootprint(g);
    this.drawGraticule(g);
    this.background = bg;
  }

  metresPerPixel() {
    const [lat] = unmercator(this.cx, this.cy);
    return (40075016.7 * Math.cos((lat * Math.PI) / 180)) / this.scale;
  }

  drawFootprint(g) {
    // Every site gets a soft disc of ~300 m: together they make the city's shape.
    const r = Math.max(4, 450 / this.metresPerPixel());
    g.fillStyle = "#f4f1ea";
    g.beginPath();
    const seen = new Set();
    for (const b of this.bins) {
      const [x, y] = this.toScreen(b.x, b.y);
      if (x < -r || y < -r || x > this.width + r || y > this.height + r) continue;
      const key = `${Math.round(x / 2)},${Math.round(y / 2)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      g.moveTo(x + r, y);
      g.arc(x, y, r, 0, 2 * Math.PI);
    }
    g.fill();
  }

  drawLabels(g) {
    // area names with a halo so they read over routes and the footprint
    g.font = "600 13px system-ui, sans-serif";
    g.textAlign = "center";
    g.lineWidth = 4;
    g.lineJoin = "round";
    g.strokeStyle = "#ffffffd0";
    g.fillStyle = "#4d5a53";
    for (const a of this.areas) {
      const [x, y] = this.toScreen(a.x, a.y);
      g.strokeText(a.name, x, y);
      g.fillText(a.name, x, y);
    }
  }

  drawTiles(g) {
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(this.scale / TILE))));
    const n = 2 ** z, size = this.scale / n;
    const [wx0, wy0] = this.toWorld(0, 0), [wx1, wy1] = this.toWorld(this.width, this.height);
    for (let tx = Math.floor(wx0 * n); tx <= Math.floor(wx1 * n); tx++) {
      for (let ty = Math.max(0, Math.floor(wy0 * n)); ty <= Math.min(n - 1, Math.floor(wy1 * n)); ty++) {
        const url = this.tileUrl.replace("{z}", z).replace("{x}", ((tx % n) + n) % n).replace("{y}", ty);
        let img = this.tiles.get(url);
        if (!img) {
          img = new Image();
          img.onload = () => { this.background = null; this.schedule(); };
          img.src = url;
          this.tiles.set(url, img);
        }
        if (img.complete && img.naturalWidth) {
          const [sx, sy] = this.toScreen(tx / n, ty / n);
          g.drawImage(img, sx, sy, size + 0.5, size + 0.5);
        }
      }
    }
  }

  drawGraticule(g) {
    // lines every 0.01 deg when zoomed in, else every 0.05 deg; a scale bar bottom left
    const mpp = this.metresPerPixel();
    const step = mpp < 5 ? 0.01 : mpp < 40 ? 0.05 : 0.5;
    const [lat0, lon0] = unmercator(...this.toWorld(0, this.height));
    const [lat1, lon1] = unmercator(...this.toWorld(this.width, 0));
    g.strokeStyle = "#0000000f";
    g.lineWidth = 1;
    g.beginPath();
    for (let lon = Math.ceil(lon0 / step) * step; lon < lon1; lon += step) {
      const [x] = this.toScreen(...mercator(0, lon));
      g.moveTo(x, 0); g.lineTo(x, this.height);
    }
    for (let lat = Math.ceil(lat0 / step) * step; lat < lat1; lat += step) {
      const [, y] = this.toScreen(...mercator(lat, 0));
      g.moveTo(0, y); g.lineTo(this.width, y);
    }
    g.stroke();
    const nice = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000];
    const m = nice.find((v) => v / mpp > 80) || nice[nice.length - 1];
    const px = m / mpp;
    g.fillStyle = "#1d2520"; g.strokeStyle = "#1d2520"; g.lineWidth = 2;
    g.beginPath(); g.moveTo(12, this.height - 14); g.lineTo(12 + px, this.height - 14); g.stroke();
    g.font = "11px system-ui, sans-serif"; g.textAlign = "left";
    g.fillText(m >= 1000 ? `${m / 1000} km` : `${m} m`, 12, this.height - 20);
  }

  // ------------------------------------------------------------------ features
  draw() {
    const g = this.canvas.getContext("2d");
    if (!this.background) this.drawBackground();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(this.background, 0, 0);
    g.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);

    for (const r of this.routes) {
      g.strokeStyle = r.colour; g.lineWidth = r.width || 2.5; g.globalAlpha = 0.85;
      g.beginPath();
      r.xy.forEach(([x, y], i) => {
        const [sx, sy] = this.toScreen(x, y);
        if (i) g.lineTo(sx, sy); else g.moveTo(sx, sy);
      });
      g.stroke();
    }
    g.globalAlpha = 1;

    this.drawLabels(g); // under the bins: the bins are what the map is for
    // bins, one path per colour (thousands of bins cost a handful of fill calls)
    // fewer bins, bigger dots; zooming in grows them too
    const base = this.bins.length < 300 ? 4.5 : this.bins.length < 2000 ? 3.5 : 2.5;
    const radius = Math.max(base, Math.min(7, this.scale / (TILE * 2 ** 13)));
    const byColour = new Map();
    let drawn = 0;
    for (const b of this.bins) {
      const [x, y] = this.toScreen(b.x, b.y);
      if (x < -10 || y < -10 || x > this.width + 10 || y > this.height + 10) continue;
      let list = byColour.get(b.colour);
      if (!list) byColour.set(b.colour, (list = []));
      list.push(x, y);
      drawn++;
    }
    g.lineWidth = 0.75; g.strokeStyle = "#00000066";
    for (const [colour, xy] of byColour) {
      g.fillStyle = colour;
      g.beginPath();
      for (let i = 0; i < xy.length; i += 2) {
        g.moveTo(xy[i] + radius, xy[i + 1]);
        g.arc(xy[i], xy[i + 1], radius, 0, 2 * Math.PI);
      }
      g.fill(); g.stroke();
    }

    for (const p of this.places) {
      const [x, y] = this.toScreen(p.x, p.y);
      g.fillStyle = p.kind === "depot" ? "#1d2520" : "#5b3a8e";
      g.strokeStyle = "#fff"; g.lineWidth = 1.5;
      g.beginPath();
      if (p.kind === "depot") g.rect(x - 6, y - 6, 12, 12);
      else { g.moveTo(x, y - 8); g.lineTo(x + 7, y + 6); g.lineTo(x - 7, y + 6); g.closePath(); }
      g.fill(); g.stroke();
    }
    this.canvas.dataset.bins = String(this.bins.length);
    this.canvas.dataset.drawn = String(drawn);
    this.canvas.setAttribute("aria-label", `${this.bins.length} bins`);
  }
}
