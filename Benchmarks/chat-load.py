#!/usr/bin/env python3
"""Chat load: N WebSocket clients spread over one or more ChatServer instances, S of them sending.

Stdlib only (socket + selectors, one thread). Every client joins with its own nickname; each
sender keeps exactly one message in flight (it sends the next one when its own message comes
back), so the offered load adapts to what the servers deliver: a closed loop. Every message
carries its send time; each delivery to each client is one sample of end-to-end latency
(sender's send -> that client's receive, through Redis when the client is on another instance).

    Benchmarks/chat-load.py --ports 8080,8081 --clients 100 --senders 10 --seconds 10

Prints deliveries per second, messages per second and the latency percentiles. The client runs
in one Python thread: on a small machine it can be the bottleneck, so compare configurations
with the same tool, clients and senders rather than reading the figures as the server's ceiling.
"""
import argparse, base64, json, os, selectors, socket, struct, sys, time


def frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Client:
    def __init__(self, index, port):
        self.index, self.name = index, "u%d" % index
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n" % (port, key)
        ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("connection closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit("upgrade refused: %r" % head[:80])
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.sock.setblocking(False)
        self.joined = False

    def send(self, obj):
        self.sock.setblocking(True)
        self.sock.sendall(frame(json.dumps(obj)))
        self.sock.setblocking(False)

    def messages(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        if not data:
            raise SystemExit("%s: the server closed the connection" % self.name)
        self.buffer += data
        out = []
        while len(self.buffer) >= 2:
            b1 = self.buffer[1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4: break
                length, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif length == 127:
                if len(self.buffer) < 10: break
                length, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            if len(self.buffer) < offset + length: break
            opcode = self.buffer[0] & 0x0F
            payload = self.buffer[offset:offset + length]
            self.buffer = self.buffer[offset + length:]
            if opcode == 1:
                out.append(payload)
            elif opcode == 9:  # ping: answer
                self.sock.setblocking(True)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + os.urandom(4) + payload)
                self.sock.setblocking(False)
        return out


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100.0 * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", default="8080", help="comma-separated ChatServer ports; clients go round-robin")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    tag = "r%d" % os.getpid()
    clients = [Client(i, ports[i % len(ports)]) for i in range(args.clients)]
    selector = selectors.DefaultSelector()
    for client in clients:
        client.name = "%s-%d" % (tag, client.index)
        selector.register(client.sock, selectors.EVENT_READ, client)
        client.send({"type": "join", "name": client.name})
    # Everyone has joined once each client has its welcome and has seen every other join.
    pending = set(range(args.clients))
    deadline = time.time() + 30
    while pending and time.time() < deadline:
        for key, _ in selector.select(0.5):
            for payload in key.data.messages():
                if b'"welcome"' in payload:
                    key.data.joined = True
                    pending.discard(key.data.index)
    if pending:
        raise SystemExit("%d clients did not join" % len(pending))
    time.sleep(0.5)
    for client in clients:  # drain the join announcements
        client.messages()

    senders = clients[:args.senders]
    sequence = 0
    latencies, deliveries, sent = [], 0, 0
    start = time.perf_counter()
    measure_from = start + args.warmup
    end = measure_from + args.seconds

    def send_next(client):
        nonlocal sequence, sent
        sequence += 1
        now = time.perf_counter()
        client.send({"type": "message", "text": "L%.9f %s" % (now, client.name)})
        if now >= measure_from:
            sent += 1

    for client in senders:
        send_next(client)
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for key, _ in selector.select(0.2):
            client = key.data
            for payload in client.messages():
                marker = payload.find(b'"text":"L')
                if marker < 0:
                    continue
                stop = payload.index(b" ", marker)
                sent_at = float(payload[marker + 9:stop])
                received = time.perf_counter()
                if sent_at >= measure_from and received < end:
                    latencies.append(received - sent_at)
                    deliveries += 1
                if client.index < args.senders and payload.find(client.name.encode() + b'"', stop) >= 0 \
                        and received < end:
                    send_next(client)
    latencies.sort()
    duration = args.seconds
    print("%s clients=%d senders=%d ports=%s seconds=%.0f: %.0f deliveries/s, %.0f messages/s sent, "
          "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)" % (
              args.label, args.clients, args.senders, args.ports, duration, deliveries / duration, sent / duration,
              percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
              (latencies[-1] if latencies else float("nan")) * 1000, len(latencies)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
