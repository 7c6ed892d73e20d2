#!/usr/bin/env python3
"""Soak test for the release EchoServer (not part of `swift test`).

Starts .build/release/EchoServer, runs CLIENTS asyncio clients for SECONDS: each connects,
upgrades, echoes a few messages (verifying every byte), then leaves in a random way (close
handshake, abrupt close, RST mid-frame, half-close without a close frame) and starts over.
Every second it samples the server's RSS and open descriptors from /proc. At the end it prints
the samples and compares the second half's RSS with the first's: RSS must flatten.

SLOW_READERS more clients send 1 MiB messages as fast as TCP lets them without reading a byte
(stopping once a send has waited 2 s), then read every echo back, verify it, close and start
over: with the server's default flow control its RSS stays bounded however much they send.

    python3 Benchmarks/soak.py [--clients 300] [--slow-readers 20] [--seconds 120] [--port 9501] [--server PATH]
"""
import argparse, asyncio, base64, os, random, signal, socket, struct, subprocess, sys, time

def frame(opcode, payload, fin=True, zero_mask=False):
    mask = b"\0\0\0\0" if zero_mask else os.urandom(4)  # a zero key leaves the payload as it is: cheap for 1 MiB
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536 else bytes([0x80 | 127]) + struct.pack("!Q", n))
    return head + mask + (payload if zero_mask else bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

async def read_one(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126: n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127: n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return bool(b0 & 0x80), b0 & 0x0F, await reader.readexactly(n)

async def read_frame(reader):
    """The next message (fragments joined) or control frame other than ping/pong."""
    opcode, data = None, b""
    while True:
        fin, op, payload = await read_one(reader)
        if op in (9, 10): continue
        if op != 0: opcode = op
        data += payload
        if fin or op >= 8: return opcode, data

stats = {"cycles": 0, "echoes": 0, "errors": 0, "slow_cycles": 0, "slow_echoes": 0, "slow_stalls": 0}

async def slow_reader(port, deadline, burst=64):
    while time.time() < deadline:
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(f"GET /slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            seed = os.urandom(4096)
            payloads = []
            for i in range(burst):  # 1 MiB each, different, without reading anything back
                payloads.append(struct.pack("!I", i) + seed * 256)
                writer.write(frame(2, payloads[-1][:1 << 20], zero_mask=True))
                try:
                    await asyncio.wait_for(writer.drain(), 2)
                except asyncio.TimeoutError:
                    stats["slow_stalls"] += 1  # TCP pushed back: the server stopped reading
                    break
            for payload in payloads:
                opcode, echoed = await read_frame(reader)
                assert opcode == 2 and echoed == payload[:1 << 20], "slow echo mismatch"
                stats["slow_echoes"] += 1
            writer.write(frame(8, b"\x03\xe8"))
            opcode, _ = await read_frame(reader)
            assert opcode == 8
            stats["slow_cycles"] += 1
        except Exception as error:
            stats["errors"] += 1
            if stats["errors"] <= 5: print("slow reader error:", repr(error), file=sys.stderr)
        finally:
            if writer: writer.close()

async def client(port, deadline):
    while time.time() < deadline:
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(f"GET /soak HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            for _ in range(random.randint(1, 20)):
                payload = os.urandom(random.choice([8, 100, 2000, 40000]))
                writer.write(frame(2, payload))
                opcode, echoed = await read_frame(reader)
                assert opcode == 2 and echoed == payload, "echo mismatch"
                stats["echoes"] += 1
            way = random.choice(["close", "abrupt", "rst-mid-frame", "half-close"])
            if way == "close":
                writer.write(frame(8, b"\x03\xe8"))
                opcode, _ = await read_frame(reader)
                assert opcode == 8
                await reader.read()  # until the server closes
            elif way == "rst-mid-frame":
                writer.write(frame(2, os.urandom(5000))[:700])
                await writer.drain()
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif way == "half-close":
                writer.write_eof()
                await reader.read()
            stats["cycles"] += 1
        except Exception as error:
            stats["errors"] += 1
            if stats["errors"] <= 5: print("client error:", repr(error), file=sys.stderr)
        finally:
            if writer: writer.close()

def sample(pid):
    rss = int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")).split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))

async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--port", type=int, default=9501)
    ap.add_argument("--slow-readers", type=int, default=20)
    ap.add_argument("--server", default=".build/release/EchoServer")
    args = ap.parse_args()
    server = subprocess.Popen([args.server, "--port", str(args.port)], stdout=subprocess.PIPE, text=True)
    assert "listening" in server.stdout.readline()
    # One connection first, so the loop's own descriptors (epoll, eventfd, timer) are in the baseline.
    saved = dict(stats)
    await asyncio.gather(*[client(args.port, time.time() + 0.5) for _ in range(8)])
    stats.update(saved)
    await asyncio.sleep(1)
    idle_rss, idle_fds = sample(server.pid)
    deadline = time.time() + args.seconds
    tasks = [asyncio.create_task(client(args.port, deadline)) for _ in range(args.clients)]
    tasks += [asyncio.create_task(slow_reader(args.port, deadline)) for _ in range(args.slow_readers)]
    samples = []
    while time.time() < deadline:
        await asyncio.sleep(1)
        samples.append(sample(server.pid))
        rss, fds = samples[-1]
        print(f"t={len(samples):4d}s rss={rss / 1024:7.1f} MiB fds={fds:5d} cycles={stats['cycles']} echoes={stats['echoes']} slow={stats['slow_cycles']}/{stats['slow_echoes']} MiB errors={stats['errors']}", flush=True)
    await asyncio.gather(*tasks)
    await asyncio.sleep(2)
    end_rss, end_fds = sample(server.pid)
    if end_fds != idle_fds:
        print("descriptors:", sorted(os.readlink(f"/proc/{server.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{server.pid}/fd")))
    server.send_signal(signal.SIGTERM); server.wait(timeout=15)
    half = len(samples) // 2
    first = max(r for r, _ in samples[:half]); second = max(r for r, _ in samples[half:])
    print(f"idle before: rss {idle_rss / 1024:.1f} MiB, {idle_fds} fds; after the clients left: rss {end_rss / 1024:.1f} MiB, {end_fds} fds")
    print(f"peak rss first half {first / 1024:.1f} MiB, second half {second / 1024:.1f} MiB ({(second - first) / first * 100:+.1f}%)")
    print(f"{stats['cycles']} connection cycles, {stats['echoes']} verified echoes, {stats['errors']} client errors; server exit {server.returncode}")
    print(f"slow readers: {args.slow_readers}, {stats['slow_cycles']} cycles, {stats['slow_echoes']} MiB echoed and verified, "
          f"{stats['slow_stalls']} times TCP pushed back on a sender; peak rss {max(r for r, _ in samples) / 1024:.1f} MiB")
    ok = end_fds == idle_fds and second <= first * 1.10 and server.returncode == 0
    print("SOAK OK" if ok else "SOAK FAILED")
    sys.exit(0 if ok else 1)

asyncio.run(main())
