#!/usr/bin/env python3
"""Opens a slua view page in headless Chromium through the DevTools protocol over
--remote-debugging-pipe (no port, no package beyond the standard library), and reports what a
reader would meet, as one JSON object on stdout:

  errors    console errors, uncaught exceptions and error log entries
  requests  every request other than the page itself (a self-contained page makes none)
  tooltip   after the mouse moves onto the cell of LAYER at POS (both from 0): its layer, position and rows
            [{lens, id, p}], and the target's rank and probability per lens
  keyboard  after focusing that cell and pressing ArrowUp: the focused cell and the tooltip's layer
  switch    that cell's background under "top-1 probability" and under "entropy", and the colour
            bar's description after switching
  grid      the first grid's size in CSS pixels and the size of its screenshot (PNG) in pixels
  blocks, cells, labelled   the number of wrapped blocks, of lens cells and of those with aria-label

Usage: browser_check.py PAGE.html LAYER POS GRID.png [FULL.png]
FULL.png, when given, is a screenshot of the whole page with the tooltip open."""
import base64
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile


class Browser:
    def __init__(self, binary, profile):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()

        def wire():  # Chromium reads commands on fd 3 and writes replies on fd 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1", "about:blank"],
            preexec_fn=wire, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self.out = os.fdopen(to_child_w, "wb", buffering=0)
        self.inp = os.fdopen(from_child_r, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_message(self):
        while b"\0" not in self.buf:
            chunk = self.inp.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read_message()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_event(self, method):
        for i, e in enumerate(self.events):
            if e["method"] == method:
                return self.events.pop(i)
        while True:
            m = self._read_message()
            if "method" in m:
                if m["method"] == method:
                    return m
                self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError("not a PNG")
    return struct.unpack(">II", data[16:24])


def main():
    page, layer, pos, grid_png = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    full_png = sys.argv[5] if len(sys.argv) > 5 else None
    signal.alarm(120)  # a hung browser fails the test instead of stalling it
    binary = os.environ.get("CHROMIUM", "chromium")
    profile = tempfile.mkdtemp(prefix="slua-view-")
    b = Browser(binary, profile)
    url = "file://" + os.path.abspath(page)
    report = {}
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            b.send(domain + ".enable", session=s)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=s)
        b.send("Page.navigate", {"url": url}, session=s)
        b.wait_event("Page.loadEventFired")

        def js(expr):
            r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=s)
            if "exceptionDetails" in r:
                raise RuntimeError("evaluate: %s" % r["exceptionDetails"])
            return r["result"].get("value")

        sel = '.lens-cell[data-layer="%d"][data-pos="%d"]' % (layer, pos)
        at = js("""(() => { const c = document.querySelector('%s'); if (!c) return null;
                   c.scrollIntoView({block: 'center', inline: 'center'});
                   const r = c.getBoundingClientRect(); return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()""" % sel)
        if at is None:
            raise RuntimeError("no cell %s" % sel)
        b.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": at["x"], "y": at["y"]}, session=s)
        read_tip = """(() => { const t = document.getElementById('tooltip');
            return { hidden: t.hidden, layer: t.dataset.layer, pos: t.dataset.pos,
              rows: Array.from(t.querySelectorAll('tr.topk')).map(r => ({lens: r.dataset.lens, id: +r.dataset.id, p: +r.dataset.p})),
              targets: Array.from(t.querySelectorAll('td.target')).map(d => ({lens: d.closest('table').dataset.lens,
                rank: +d.dataset.rank, p: +d.dataset.targetP})) }; })()"""
        report["tooltip"] = js(read_tip)
        if full_png:
            size = js("""(() => { const t = document.getElementById('tooltip'), m = document.querySelector('main');
                          const bottom = Math.max(m.getBoundingClientRect().bottom, t.hidden ? 0 : t.getBoundingClientRect().bottom);
                          return {w: document.documentElement.scrollWidth, h: Math.ceil(bottom + window.scrollY + 16)}; })()""")
            shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                          "clip": {"x": 0, "y": 0, "width": min(size["w"], 1400), "height": size["h"], "scale": 1}}, session=s)
            with open(full_png, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        js("document.querySelector('%s').focus()" % sel)
        b.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "ArrowUp", "code": "ArrowUp",
                                          "windowsVirtualKeyCode": 38}, session=s)
        b.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "ArrowUp", "code": "ArrowUp",
                                          "windowsVirtualKeyCode": 38}, session=s)
        report["keyboard"] = js("""(() => { const a = document.activeElement, t = document.getElementById('tooltip');
            return {layer: a.dataset.layer, pos: a.dataset.pos, label: a.getAttribute('aria-label'),
                    tooltip_layer: t.dataset.layer, hidden: t.hidden}; })()""")
        report["switch"] = js("""(() => { const c = document.querySelector('%s'), s = document.getElementById('color');
            const before = getComputedStyle(c).backgroundColor;
            s.value = 'entropy'; s.dispatchEvent(new Event('change'));
            const after = getComputedStyle(c).backgroundColor;
            const bar = document.getElementById('colorbar').getAttribute('aria-label');
            s.value = 'prob'; s.dispatchEvent(new Event('change'));
            return {before: before, after: after, colorbar: bar}; })()""" % sel)
        rect = js("""(() => { const g = document.querySelector('.grid.lens'); const r = g.getBoundingClientRect();
                     return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}; })()""")
        shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                      "clip": dict(rect, scale=1)}, session=s)
        data = base64.b64decode(shot["data"])
        with open(grid_png, "wb") as f:
            f.write(data)
        w, h = png_size(data)
        report["grid"] = {"css_width": rect["width"], "css_height": rect["height"], "png_width": w, "png_height": h}
        report["blocks"] = js("document.querySelectorAll('.block').length")
        report["cells"] = js("document.querySelectorAll('.lens-cell').length")
        report["labelled"] = js("document.querySelectorAll('.lens-cell[aria-label]').length")
        report["colorbar"] = js("document.getElementById('colorbar').getAttribute('aria-label')")
        report["dola_cells"] = js("document.querySelectorAll('.grid.dola .cell').length")
        report["skip_cells"] = js("document.querySelectorAll('.grid.skip .cell').length")
        # let any late console message or request arrive before reading the log
        js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    finally:
        events = b.events
        b.close()
    errors, requests = [], []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:400])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append("log: " + p["entry"].get("text", ""))
        elif m == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            if u != url:
                requests.append(u)
    report["errors"], report["requests"] = errors, requests
    print(json.dumps(report))


if __name__ == "__main__":
    main()
