"""The chat page at / in headless Chromium (Debian's `chromium`), driven over the DevTools
protocol: the page loads, a message typed into it (Input.insertText, then Enter) gets an
answer streamed in several chunks through /v1/chat/completions, and a screenshot of the
result is written to the output directory (argument 1).

Skips (exit 77) when chromium is not installed."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from toy_server import ToyServer, fixture  # noqa: E402


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="toy-chat-page-")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("SKIPPED: chromium is not installed (scripts/install-deps.sh installs it)")
        sys.exit(77)
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="toy-chromium-")
    with ToyServer(fixture("models/stories260K.gguf"), "--parallel", "2") as server:
        chrome = subprocess.Popen(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "--window-size=1000,700", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            port = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and port is None:
                line = chrome.stderr.readline()
                if not line:
                    break
                m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                if m:
                    port = int(m.group(1))
            if port is None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
            page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
            page.call("Page.enable")
            page.call("Page.navigate", url=server.url + "/")
            page.wait_for("document.readyState === 'complete' && "
                          "document.getElementById('model').textContent === 'stories260K'")
            page.eval("document.getElementById('temperature').value = '0';"
                      "document.getElementById('max_tokens').value = '48';"
                      "document.getElementById('input').focus()")
            page.call("Input.insertText", text="Once upon a time")
            for kind in ("keyDown", "keyUp"):
                page.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                          windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
            page.wait_for("(() => { const a = document.querySelector('.assistant');"
                          " return a && a.dataset.done === 'true'; })()")
            reply = page.eval("document.querySelector('.assistant').textContent")
            chunks = int(page.eval("document.querySelector('.assistant').dataset.chunks || '0'"))
            user = page.eval("document.querySelector('.user').textContent")
            errors = page.eval("document.querySelectorAll('.error').length")
            shot = page.call("Page.captureScreenshot", format="png")["data"]
            path = os.path.join(out_dir, "chat-page.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot))
            page.ws.close()
        finally:
            chrome.terminate()
            try:
                chrome.wait(timeout=10)
            except subprocess.TimeoutExpired:
                chrome.kill()
            chrome.stderr.close()
            shutil.rmtree(profile, ignore_errors=True)
        log = server.log_text()
    print(f"typed: {user!r}\nstreamed reply ({chunks} chunks): {reply!r}\nscreenshot: {path}")
    ok = (user == "Once upon a time" and len(reply.strip()) > 0 and chunks > 1 and errors == 0
          and "POST /v1/chat/completions 200" in log)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
