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
#   python3 docs/browser-check.py .build/debug/ChatServer /tmp/chat-redis.png --redis
#
# With --redis it starts its own redis-server on a free port and two ChatServer instances on it
# (--redis redis://127.0.0.1:PORT), and checks instead: a page on each instance, messages both
# ways, a nickname taken on one instance refused on the other, a late joiner on the other
# instance getting the shared history, and Redis killed and restarted — local chat goes on,
# cross-instance chat resumes by itself.
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
REDIS = len(sys.argv) >= 4 and sys.argv[3] == "--redis"
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

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def save_screenshot(page):
    time.sleep(0.3)
    shot = page.call("Page.captureScreenshot", format="png")
    open(SHOT, "wb").write(base64.b64decode(shot["data"]))
    print("screenshot:", SHOT)

def tear_down(servers, then=()):
    """Stops the chat servers (SIGTERM, SIGKILL after 10 s), then `then`, then the browsers;
    prints the servers' log."""
    for server in servers:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except Exception:
            server.kill()
    for process in then:
        process.kill()
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()
    print("server log:\n" + open(f"{temp}/server.log").read())
    shutil.rmtree(temp, ignore_errors=True)

def redis_check():
    redis_port = free_port()
    def start_redis():
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                import socket
                with socket.create_connection(("127.0.0.1", redis_port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return redis
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")
    redis = start_redis()
    ports = (PORT, PORT + 1)
    servers = []
    for port in ports:
        server = subprocess.Popen([SERVER, "--port", str(port), "--redis", f"redis://127.0.0.1:{redis_port}"],
                                  stdout=subprocess.PIPE, stderr=open(f"{temp}/server.log", "a"), text=True)
        print("server:", server.stdout.readline().strip())
        servers.append(server)
    try:
        time.sleep(0.5)  # both instances subscribed
        a, b = (f"http://127.0.0.1:{port}/" for port in ports)
        alice, bob = Page(start_browser(9311)), Page(start_browser(9312))
        alice.call("Page.navigate", url=a + "?name=Alice")
        bob.call("Page.navigate", url=b + "?name=Bob")
        for page in (alice, bob):
            page.wait("document.getElementById('join').classList.contains('hidden')", "joined")
        alice.wait("document.getElementById('users').innerText.includes('Bob')", "Alice (instance A) sees Bob (instance B) online")
        bob.wait("document.getElementById('users').innerText.includes('Alice')", "Bob sees Alice online")
        check(True, "a page on each instance: both list both users")
        alice.say("Hi Bob, I am on instance A.")
        bob.wait("document.getElementById('log').innerText.includes('on instance A')", "Bob receives Alice's message")
        bob.say("Hi Alice, and I am on instance B. Redis carries every message between us.")
        alice.wait("document.getElementById('log').innerText.includes('on instance B')", "Alice receives Bob's message")
        check(alice.eval("document.getElementById('log').innerText.split('on instance A').length") == 2,
              "messages travel both ways across instances, each shown once")
        carol = Page(9312, new=True)
        carol.call("Page.navigate", url=b + "?name=alice")
        carol.wait("document.getElementById('joinError').textContent.includes('taken')", "Alice's nickname refused on B")
        check(True, "a nickname taken on A is refused on B: " + carol.eval("document.getElementById('joinError').textContent"))

        redis.kill()
        redis.wait()
        ann = Page(9311, new=True)
        ann.call("Page.navigate", url=a + "?name=Ann")
        ann.wait("document.getElementById('join').classList.contains('hidden')", "Ann joins on A while Redis is down")
        ann.say("Redis is down, but A still works.")
        alice.wait("document.getElementById('log').innerText.includes('A still works')", "local chat while Redis is down")
        check(True, "Redis killed: chat on one instance goes on")
        redis = start_redis()
        deadline = time.time() + 20
        attempt = 0
        while time.time() < deadline:  # until both instances have reconnected and resubscribed
            attempt += 1
            alice.say(f"Redis is back ({attempt}).")
            time.sleep(0.5)
            if bob.eval(f"document.getElementById('log').innerText.includes('Redis is back ({attempt}).')"):
                break
        else:
            raise SystemExit("FAILED: cross-instance chat did not resume")
        check(True, f"Redis restarted: cross-instance chat resumes (message {attempt})")
        bob.say("Welcome back, everyone.")
        alice.wait("document.getElementById('log').innerText.includes('Welcome back, everyone')", "Alice receives Bob's message")
        erin = Page(start_browser(9313))
        erin.call("Page.navigate", url=b + "?name=Erin")
        erin.wait("document.getElementById('log').innerText.includes('Welcome back, everyone')", "Erin gets the shared history")
        check("A still works" not in erin.text("log"),
              "a latecomer on B gets the history kept in Redis (since its restart)")
        save_screenshot(alice)
    finally:
        tear_down(servers, then=[redis])

if REDIS:
    redis_check()
    sys.exit(0)

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
    save_screenshot(erin)
finally:
    tear_down([server])
