# Firefox check of the ChatServer example over WebDriver BiDi: a headless Firefox page joins with
# ?name=, then chats with a Python client (no Origin, "chat" subprotocol); saves /tmp/ff.png.
#   swift run ChatServer --port 8097 &   then   python3 docs/browser-check-firefox.py http://127.0.0.1:8097/
# Needs Debian firefox-esr and pip websocket-client.
import json, subprocess, sys, tempfile, time, base64, websocket
URL = sys.argv[1]
profile = tempfile.mkdtemp()
ff = subprocess.Popen(["firefox-esr", "--headless", "--remote-debugging-port=9333", "--profile", profile, "--no-remote"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            ws = websocket.create_connection("ws://127.0.0.1:9333/session", timeout=20, suppress_origin=True); break
        except Exception: time.sleep(0.2)
    n = [0]
    def call(method, **params):
        n[0] += 1
        ws.send(json.dumps({"id": n[0], "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == n[0]:
                if m.get("type") == "error": raise SystemExit(m)
                return m["result"]
    call("session.new", capabilities={})
    ctx = call("browsingContext.getTree")["contexts"][0]["context"]
    call("browsingContext.setViewport", context=ctx, viewport={"width": 1100, "height": 750})
    call("browsingContext.navigate", context=ctx, url=URL + "?name=Firefox", wait="complete")
    def ev(expr):
        r = call("script.evaluate", expression=expr, target={"context": ctx}, awaitPromise=True)
        return r.get("result", {}).get("value")
    def wait(expr, what):
        for _ in range(150):
            if ev(expr): return
            time.sleep(0.1)
        raise SystemExit("FAILED " + what + ": " + str(ev("document.getElementById('log').innerText")))
    wait("document.getElementById('join').classList.contains('hidden')", "Firefox joins via ?name=")
    # A non-browser client (no Origin) with the chat subprotocol.
    other = websocket.create_connection(URL.replace("http", "ws") + "chat", subprotocols=["chat"], suppress_origin=True)
    other.send(json.dumps({"type": "join", "name": "Py"}))
    welcome = json.loads(other.recv())
    print("python client welcome users:", welcome["users"])
    other.send(json.dumps({"type": "message", "text": "hello Firefox"}))
    wait("document.getElementById('log').innerText.includes('hello Firefox')", "Firefox receives")
    ev("document.getElementById('text').value = 'hello Python'; document.getElementById('send').requestSubmit(); true")
    while True:
        m = json.loads(other.recv())
        if m["type"] == "message" and m["from"] == "Firefox": print("python got:", m); break
    print("firefox users:", ev("document.getElementById('users').innerText").replace("\n", ", "))
    open("/tmp/ff.png", "wb").write(base64.b64decode(call("browsingContext.captureScreenshot", context=ctx)["data"]))
    other.close()
    print("FIREFOX OK")
finally:
    ff.terminate(); ff.wait()
