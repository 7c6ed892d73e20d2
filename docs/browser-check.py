# Browser check of the ChatServer example: two headless Chromium pages join through the UI,
# exchange a message, and the first page is saved as a screenshot.
#   swift run ChatServer --port 8099 &   then   python3 docs/browser-check.py docs/chat.png
# Needs Debian chromium and pip websocket-client.
import json, subprocess, time, urllib.request, websocket, base64, sys

def start_browser(port, profile):
    return subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}",
                             f"--user-data-dir={profile}", "--window-size=1100,720", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

class Page:
    def __init__(self, port):
        for _ in range(50):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                page = [t for t in targets if t["type"] == "page"][0]
                break
            except Exception:
                time.sleep(0.2)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=20)
        self.id = 0
    def call(self, method, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.id:
                return msg.get("result", msg)
    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

b1 = start_browser(9301, "/tmp/prof1"); b2 = start_browser(9302, "/tmp/prof2")
try:
    alice, bob = Page(9301), Page(9302)
    alice.call("Page.navigate", url="http://127.0.0.1:8099/")
    bob.call("Page.navigate", url="http://127.0.0.1:8099/")
    time.sleep(2)
    # Join through the UI like a person: type a name, submit.
    for page, name in ((alice, "Alice"), (bob, "Bob")):
        page.eval(f"document.getElementById('name').value = '{name}'; document.getElementById('joinForm').requestSubmit(); true")
    time.sleep(1)
    alice.eval("document.getElementById('text').value = 'Hi Bob! This is DispatchWebSocket talking to Chromium.'; document.getElementById('send').requestSubmit(); true")
    time.sleep(0.5)
    bob.eval("document.getElementById('text').value = 'Hello Alice, got it loud and clear!'; document.getElementById('send').requestSubmit(); true")
    time.sleep(1)
    bob_log = bob.eval("document.getElementById('log').innerText")
    alice_log = alice.eval("document.getElementById('log').innerText")
    print("BOB SEES:\n" + bob_log)
    print("ALICE SEES:\n" + alice_log)
    print("STATE:", alice.eval("document.getElementById('stateText').textContent"), "| USERS:", alice.eval("document.getElementById('users').innerText").replace("\n", ", "))
    shot = alice.call("Page.captureScreenshot", format="png")
    open(sys.argv[1], "wb").write(base64.b64decode(shot["data"]))
    ok = "Hi Bob!" in bob_log and "Hello Alice" in alice_log
    print("EXCHANGE OK" if ok else "EXCHANGE FAILED")
finally:
    b1.terminate(); b2.terminate()
