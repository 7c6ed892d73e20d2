# Browser check of the ChatServer example, in headless Chromium driven over the DevTools protocol:
# pages join (through ?name= and through the join form), exchange messages, a duplicate nickname
# is refused, the server restarts and the pages reconnect by themselves, and the first page is
# saved as a screenshot.
#
#   swift build --product ChatServer && python3 docs/browser-check.py .build/debug/ChatServer docs/chat.png
#   python3 docs/browser-check.py .build/debug/ChatServer /tmp/chat-tls.png --tls CERT.pem KEY.pem
#
# With --tls the server serves https:// and wss://; Chromium trusts exactly that certificate's key
# (--ignore-certificate-errors-spki-list with its SPKI hash), not every certificate.
#
# Needs Debian's chromium and `pip install websocket-client`.
# Exits 0 when every check passed and non-zero on the first failed one (CI runs it). The whole run
# is bounded by BROWSER_CHECK_TIMEOUT seconds (default 300), after which it fails and cleans up.
import base64, json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request
import websocket

def timed_out(*_):
    raise SystemExit(f"FAILED: the browser check did not finish within {TIMEOUT} s")
TIMEOUT = int(os.environ.get("BROWSER_CHECK_TIMEOUT", "300"))
signal.signal(signal.SIGALRM, timed_out)
signal.alarm(TIMEOUT)

SERVER, SHOT = sys.argv[1], sys.argv[2]
TLS = sys.argv[4:6] if len(sys.argv) >= 6 and sys.argv[3] == "--tls" else None
PORT = 8099
URL = f"{'https' if TLS else 'http'}://127.0.0.1:{PORT}/"

def spki_hash(certificate):
    key = subprocess.run(["openssl", "x509", "-in", certificate, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=key, capture_output=True, check=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True).stdout
    return base64.b64encode(digest).decode()
temp = tempfile.mkdtemp(prefix="chat-check-")
processes = []

def start_server():
    tls_arguments = ["--tls-cert", TLS[0], "--tls-key", TLS[1]] if TLS else []
    server = subprocess.Popen([SERVER, "--port", str(PORT)] + tls_arguments, stdout=subprocess.PIPE, stderr=open(f"{temp}/server.log", "a"), text=True)
    line = server.stdout.readline().strip()
    print("server:", line)
    if not line:
        raise SystemExit(f"FAILED: the server printed nothing (exit status {server.poll()})")
    return server

def start_browser(debug_port):
    profile = tempfile.mkdtemp(dir=temp)  # a fresh profile: no nickname remembered in localStorage
    browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                f"--remote-debugging-port={debug_port}", f"--user-data-dir={profile}"]
                               + ([f"--ignore-certificate-errors-spki-list={spki_hash(TLS[0])}"] if TLS else []) + ["about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(browser)
    return debug_port

class Page:
    def __init__(self, debug_port, new=False):
        for _ in range(300):  # a loaded machine starts chromium slowly
            try:
                if new:
                    request = urllib.request.Request(f"http://127.0.0.1:{debug_port}/json/new?about:blank", method="PUT")
                    target = json.load(urllib.request.urlopen(request))
                else:
                    target = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json")) if t["type"] == "page"][0]
                break
            except Exception:
                time.sleep(0.1)
        else:
            raise SystemExit(f"FAILED: Chromium's DevTools endpoint on port {debug_port} did not come up")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=20)
        self.id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=1100, height=750, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.id:
                return message.get("result", message)

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait(self, expression, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expression):
                return
            time.sleep(0.1)
        raise SystemExit(f"FAILED: {what}\nlog: {self.text('log')}\nstate: {self.text('stateText')}")

    def text(self, element):
        return self.eval(f"document.getElementById('{element}').innerText")

    def say(self, text):
        self.eval(f"document.getElementById('text').value = {json.dumps(text)}; document.getElementById('send').requestSubmit(); true")

def check(condition, what):
    print(("ok      " if condition else "FAILED  ") + what)
    if not condition:
        raise SystemExit(1)

server = start_server()
try:
    alice, bob = Page(start_browser(9301)), Page(start_browser(9302))
    # Alice joins through ?name=, Bob through the join form like a person.
    alice.call("Page.navigate", url=URL + "?name=Alice")
    bob.call("Page.navigate", url=URL)
    bob.wait("document.getElementById('stateText').textContent === 'Connected'", "Bob's page connects")
    bob.eval("document.getElementById('name').value = 'Bob'; document.getElementById('joinForm').requestSubmit(); true")
    for page in (alice, bob):
        page.wait("document.getElementById('join').classList.contains('hidden')", "joined")
    alice.wait("document.getElementById('users').innerText.includes('Bob')", "Alice sees Bob online")
    check("Bob" in alice.text("users") and "Alice" in bob.text("users"), "both pages list both users")

    alice.say("Hi Bob! Is this thing on?")
    bob.wait("document.getElementById('log').innerText.includes('Is this thing on?')", "Bob receives Alice's message")
    bob.say("Loud and clear. Every message goes over one WebSocket per page.")
    alice.wait("document.getElementById('log').innerText.includes('Loud and clear')", "Alice receives Bob's message")
    check(True, "messages travel both ways between two Chromium pages")

    # A third page in Bob's browser: Alice's nickname is taken, so the join form shows the error.
    carol = Page(9302, new=True)
    carol.call("Page.navigate", url=URL + "?name=alice")
    carol.wait("document.getElementById('joinError').textContent.includes('taken')", "duplicate nickname refused")
    check(True, "a duplicate nickname gets: " + carol.eval("document.getElementById('joinError').textContent"))
    carol.eval("document.getElementById('name').value = 'Carol'; document.getElementById('joinForm').requestSubmit(); true")
    carol.wait("document.getElementById('join').classList.contains('hidden')", "Carol joins")
    carol.say("Hey both 👋 The server sends the last 50 messages to newcomers.")
    alice.wait("document.getElementById('log').innerText.includes('last 50 messages')", "Alice receives Carol's message")

    # Restart the server: every page shows the state and reconnects (with backoff) by itself.
    server.send_signal(signal.SIGINT)
    check(server.wait(10) == 0, "Ctrl-C: the server exits with status 0")
    alice.wait("document.getElementById('state').className.includes('closed')", "Alice's page notices")
    print("        state while down:", alice.text("stateText"))
    server = start_server()
    for page in (alice, bob, carol):
        page.wait("document.getElementById('stateText').textContent === 'Connected' && !document.getElementById('users').classList.contains('stale')",
                  "reconnected and rejoined", timeout=20)
    check(alice.text("users").count("\n") >= 2, "all three pages reconnect and rejoin: " + alice.text("users").replace("\n", ", "))

    # A conversation for the screenshot, with someone dropping by.
    dave = Page(9301, new=True)
    dave.call("Page.navigate", url=URL + "?name=Dave")
    alice.wait("document.getElementById('log').innerText.includes('Dave joined')", "Alice sees Dave join")
    dave.say("Just passing through, bye!")
    alice.wait("document.getElementById('log').innerText.includes('passing through')", "Alice receives Dave's message")
    dave.call("Page.close")
    alice.wait("document.getElementById('log').innerText.includes('Dave left')", "Alice sees Dave leave")
    check(True, "join and leave notices reach the other pages")
    for page, text in ((bob, "Welcome back! The server restarted and every page reconnected on its own."),
                       (carol, "Nice. Nicknames are checked, too: 1–24 letters, digits, spaces, _ or -."),
                       (alice, "And it is all one port: the page at /, the WebSocket at /chat."),
                       (alice, "No CDN, no bundle. Just Swift, Dispatch and POSIX sockets."),
                       (bob, "Ship it 🚀")):
        page.say(text)
        time.sleep(0.15)
    alice.wait("document.getElementById('log').innerText.includes('Ship it')", "the conversation arrives")

    # A latecomer gets the history on joining; her page is the screenshot.
    erin = Page(start_browser(9303))
    erin.call("Page.navigate", url=URL + "?name=Erin")
    erin.wait("document.getElementById('log').innerText.includes('Ship it')", "Erin gets the history")
    check("Is this thing on?" not in erin.text("log") and "Welcome back!" in erin.text("log"),
          "a latecomer gets the history (since the restart: it is kept in memory)")
    erin.say("Hi all! I just joined and got the last messages right away.")
    alice.wait("document.getElementById('log').innerText.includes('I just joined')", "Alice receives Erin's message")
    check(erin.eval("document.getElementById('text').value") == "", "the input is cleared after sending")
    erin.eval("document.getElementById('text').blur(); true")
    time.sleep(0.3)
    shot = erin.call("Page.captureScreenshot", format="png")
    open(SHOT, "wb").write(base64.b64decode(shot["data"]))
    print("screenshot:", SHOT)
finally:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except Exception:
        server.kill()
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()
    print("server log:\n" + open(f"{temp}/server.log").read())
    shutil.rmtree(temp, ignore_errors=True)
