"""test_sockets.py - scripted tests of the socket demos built on net/.

Every program is tested on 127.0.0.1 and on ::1 (the ::1 classes are
skipped, with a message, when IPv6 loopback is unavailable): TCP and UDP
echo round trips, several messages per connection, several clients at once,
the UDP client getting through a server that drops most datagrams and
giving up cleanly when nobody answers, the chat's relaying and notices, the
benchmark's table, and the one-line messages for a port already in use, a
closed port, a name that does not resolve and a time limit that ran out.

Standard library only. Programs come from $BUILD (default "build"), servers
listen on port 0 and print the port, and are stopped by PID with SIGTERM
(or SIGINT) and must exit 0. With WS_TEST_VALGRIND=1 the servers run under
valgrind (errors or leaks make them exit 99) and every timeout grows.
No traffic goes anywhere but 127.0.0.1 and ::1.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

VALGRIND = os.environ.get("WS_TEST_VALGRIND", "0") == "1"
SCALE = 10.0 if VALGRIND else 1.0
VALGRIND_CMD = [
    "valgrind", "-q", "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def t(seconds):
    """A timeout in seconds, scaled for valgrind."""
    return seconds * SCALE


def prog(name):
    """The path of a built program."""
    path = os.path.join(os.environ.get("BUILD", "build"), name)
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(ROOT, path)
    return path


def ipv6_available():
    """True if a socket can be bound to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def hostport(host, port):
    """The way the programs name an address: 127.0.0.1:80, [::1]:80."""
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def closed_port(host, kind=socket.SOCK_STREAM):
    """A port that nothing listens on: bound to port 0, then closed."""
    with socket.socket(family_of(host), kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(name, args, timeout=10, stdin=None):
    """Run a client program to completion; returns CompletedProcess."""
    return subprocess.run([prog(name)] + [str(a) for a in args],
                          input=stdin, capture_output=True, text=True,
                          timeout=timeout)


class Server:
    """One server program on port 0, started and stopped by PID."""

    LISTEN = re.compile(r"listening on (\S+):(\d+)")

    def __init__(self, name, host, *args):
        self.name = name
        self.host = host
        self.port = None
        cmd = [prog(name), "--host", host, "--port", "0"] + list(args)
        if VALGRIND:
            cmd = VALGRIND_CMD + cmd
        self.out, self.err = [], []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.threads = [self._drain(self.proc.stdout, self.out),
                        self._drain(self.proc.stderr, self.err)]
        line = self.wait_line(self.LISTEN, t(5))
        if line is None:
            self.kill()
            raise AssertionError("%s did not start: %r %r"
                                 % (name, self.out, self.err))
        self.port = int(self.LISTEN.search(line).group(2))

    def _drain(self, pipe, lines):
        def loop():
            for raw in iter(pipe.readline, b""):
                with self.cond:
                    lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self.cond.notify_all()
            pipe.close()
        th = threading.Thread(target=loop, daemon=True)
        th.start()
        return th

    def wait_line(self, pattern, timeout):
        """The first stdout line matching pattern, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.out:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.1))

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=t(10))
        for th in self.threads:
            th.join(timeout=5)

    def stop(self, sig=signal.SIGTERM):
        """Signal by PID and assert a clean exit 0; returns stdout lines."""
        if self.proc.poll() is not None:
            self.kill()
            raise AssertionError("%s exited early: rc=%r %r" % (
                self.name, self.proc.returncode, self.err[-10:]))
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=t(10))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s ignored signal %d" % (self.name, sig))
        for th in self.threads:
            th.join(timeout=5)
        rc = self.proc.returncode
        if rc != 0:
            raise AssertionError("%s exit status %d%s: %r" % (
                self.name, rc,
                " (valgrind errors or leaks)" if rc == 99 and VALGRIND
                else "", self.err[-20:]))
        return self.out

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.proc.poll() is None:
            if exc_type is None:
                self.stop()
            else:
                self.kill()


class LineSocket:
    """A TCP client socket that reads whole lines, each read bounded."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=t(5))
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, timeout=5):
        self.sock.settimeout(t(timeout))
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("closed before a line; got %r"
                                     % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def local(self):
        host, port = self.sock.getsockname()[:2]
        return hostport(host, port)

    def close(self):
        self.sock.close()


class Loopback:
    """Mixin: the loopback address the tests of a class use."""

    HOST = "127.0.0.1"

    @classmethod
    def setUpClass(cls):
        if ":" in cls.HOST and not ipv6_available():
            raise unittest.SkipTest("IPv6 loopback (::1) is not available "
                                    "here")


class TcpEchoTests(Loopback):
    def test_client_round_trips(self):
        with Server("tcp_echo_server", self.HOST) as srv:
            msgs = ["hello", "several messages", "on one connection", "ü"]
            r = run("tcp_client", [self.HOST, srv.port] + msgs, t(10))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "".join(m + "\n" for m in msgs))
            self.assertEqual(r.stderr, "")
            r = run("tcp_client", [self.HOST, srv.port], t(10),
                    stdin="line one\nline two\n\nlast without newline")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "line one\nline two\n\n"
                             "last without newline\n")
            srv.wait_line("disconnected", t(5))

    def test_several_clients_at_once(self):
        with Server("tcp_echo_server", self.HOST, "--quiet") as srv:
            socks = [LineSocket(self.HOST, srv.port) for _ in range(6)]
            # Interleaved: every client is connected before any is served.
            for rnd in range(5):
                for i, s in enumerate(socks):
                    s.send("client %d round %d\n" % (i, rnd))
                for i, s in enumerate(socks):
                    self.assertEqual(s.line(), "client %d round %d" % (i, rnd))
            procs = [subprocess.Popen(
                [prog("tcp_client"), self.HOST, str(srv.port),
                 "p%d-a" % i, "p%d-b" % i], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True) for i in range(4)]
            for i, p in enumerate(procs):
                out, err = p.communicate(timeout=t(10))
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(out, "p%d-a\np%d-b\n" % (i, i))
            for s in socks:
                s.close()

    def test_bulk_and_half_close(self):
        data = bytes(range(256)) * 4096  # 1 MiB: the queue fills up
        with Server("tcp_echo_server", self.HOST, "--quiet") as srv:
            s = socket.create_connection((self.HOST, srv.port),
                                         timeout=t(10))
            got = bytearray()

            def reader():
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    got.extend(chunk)
            th = threading.Thread(target=reader, daemon=True)
            th.start()
            s.sendall(data)
            # Our half closed: the server echoes the rest, then closes.
            s.shutdown(socket.SHUT_WR)
            th.join(t(20))
            self.assertFalse(th.is_alive(), "server did not close")
            self.assertEqual(bytes(got), data)
            s.close()

    def test_stop_with_clients_connected(self):
        srv = Server("tcp_echo_server", self.HOST)
        a = LineSocket(self.HOST, srv.port)
        a.send("x\n")
        self.assertEqual(a.line(), "x")
        out = srv.stop(signal.SIGINT)
        self.assertIn("tcp_echo_server: stopped", out)
        a.close()

    def test_bind_in_use(self):
        with socket.socket(family_of(self.HOST)) as busy:
            busy.bind((self.HOST, 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            for name in ("tcp_echo_server", "tcp_chat"):
                r = run(name, ["--host", self.HOST, "--port", port], t(10))
                self.assertEqual(r.returncode, 1)
                self.assertEqual(r.stderr, "%s: bind %s: Address already in "
                                 "use\n" % (name, hostport(self.HOST, port)))

    def test_connect_closed_port(self):
        port = closed_port(self.HOST)
        r = run("tcp_client", [self.HOST, port, "x"], t(10))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "tcp_client: connect %s: Connection "
                         "refused\n" % hostport(self.HOST, port))
        self.assertEqual(r.stdout, "")

    def test_reply_timeout(self):
        with socket.socket(family_of(self.HOST)) as mute:
            mute.bind((self.HOST, 0))
            mute.listen(1)  # accepted by the kernel, never answered
            port = mute.getsockname()[1]
            r = run("tcp_client", ["--timeout", 200, self.HOST, port, "x"],
                    t(10))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "tcp_client: recv %s: timed out after "
                         "200 ms\n" % hostport(self.HOST, port))

    def test_connect_timeout(self):
        # listen(0) and no accept: once the queue holds one connection,
        # Linux drops further SYNs, and a connect can only time out.
        with socket.socket(family_of(self.HOST)) as full:
            full.bind((self.HOST, 0))
            full.listen(0)
            port = full.getsockname()[1]
            fillers = []
            for _ in range(2):
                c = socket.socket(family_of(self.HOST))
                c.setblocking(False)
                c.connect_ex((self.HOST, port))
                fillers.append(c)
            time.sleep(0.1)
            r = run("tcp_client", ["--timeout", 300, self.HOST, port, "x"],
                    t(10))
            for c in fillers:
                c.close()
        if r.returncode == 0:
            self.skipTest("the listen queue did not fill up here")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "tcp_client: connect %s: timed out after "
                         "300 ms\n" % hostport(self.HOST, port))


class UdpTests(Loopback):
    def test_round_trips(self):
        with Server("udp_echo_server", self.HOST) as srv:
            r = run("udp_client", [self.HOST, srv.port, "hello", "two words",
                                   "third"], t(10))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "hello\ntwo words\nthird\n")
            out = srv.stop()
        self.assertIn("udp_echo_server: stopped: 3 received, 3 echoed, "
                      "0 dropped", out)

    def test_several_clients_at_once(self):
        with Server("udp_echo_server", self.HOST) as srv:
            procs = [subprocess.Popen(
                [prog("udp_client"), "--timeout", str(int(t(0.5) * 1000)),
                 self.HOST, str(srv.port), "c%d-1" % i, "c%d-2" % i],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(4)]
            for i, p in enumerate(procs):
                out, err = p.communicate(timeout=t(20))
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(out, "c%d-1\nc%d-2\n" % (i, i))

    def test_lossy_server(self):
        # Seeded: the same datagrams are dropped on every run (7 of 10).
        with Server("udp_echo_server", self.HOST, "--drop-rate", "0.75",
                    "--seed", "2") as srv:
            timeout = int(t(0.02) * 1000)
            r = run("udp_client", ["--timeout", timeout, "--retries", 30,
                                   self.HOST, srv.port, "one", "two",
                                   "three"], t(30))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "one\ntwo\nthree\n")
            self.assertIn("retrying", r.stderr)
            self.assertNotIn("giving up", r.stderr)
            out = srv.stop()
        m = [re.search(r"(\d+) received, (\d+) echoed, (\d+) dropped", line)
             for line in out]
        m = [x for x in m if x][0]
        received, echoed, dropped = (int(x) for x in m.groups())
        self.assertGreaterEqual(echoed, 3)
        self.assertGreater(dropped, received / 2, "most should be dropped")

    def test_gives_up_without_server(self):
        port = closed_port(self.HOST, socket.SOCK_DGRAM)
        start = time.monotonic()
        r = run("udp_client", ["--timeout", 50, "--retries", 2, self.HOST,
                               port, "anyone?"], t(10))
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(lines[0], "udp_client: no reply to #1 within 50 ms "
                         "(attempt 1 of 3), retrying")
        self.assertEqual(lines[1], "udp_client: no reply to #1 within 100 ms "
                         "(attempt 2 of 3), retrying")
        self.assertRegex(lines[2], r"^udp_client: giving up: no reply from "
                         + re.escape(hostport(self.HOST, port))
                         + r" to #1 after 3 attempts in \d+ ms")
        self.assertEqual(len(lines), 3)
        self.assertLess(elapsed, 5)  # 50 + 100 + 200 ms of waiting

    def test_replies_matched_by_sequence(self):
        # A fake server answers each request with a stale reply first.
        fam = family_of(self.HOST)
        with socket.socket(fam, socket.SOCK_DGRAM) as fake:
            fake.bind((self.HOST, 0))
            fake.settimeout(t(5))
            port = fake.getsockname()[1]

            def serve():
                for _ in range(2):
                    data, peer = fake.recvfrom(65536)
                    seq = int(data.split(b" ", 1)[0])
                    fake.sendto(b"%d stale" % (seq - 1), peer)
                    fake.sendto(b"garbage", peer)
                    fake.sendto(data, peer)
            th = threading.Thread(target=serve, daemon=True)
            th.start()
            r = run("udp_client", ["--verbose", self.HOST, port, "a", "b"],
                    t(10))
            th.join(t(5))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "a\nb\n")
        self.assertIn("ignoring a reply that is not for #2", r.stderr)

    def test_bind_in_use(self):
        with socket.socket(family_of(self.HOST), socket.SOCK_DGRAM) as busy:
            busy.bind((self.HOST, 0))
            port = busy.getsockname()[1]
            r = run("udp_echo_server", ["--host", self.HOST, "--port", port],
                    t(10))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "udp_echo_server: bind %s: Address already "
                         "in use\n" % hostport(self.HOST, port))


class ChatTests(Loopback):
    def join(self, srv, online):
        c = LineSocket(self.HOST, srv.port)
        self.assertEqual(c.line(), "* welcome %s, %d online; /nick NAME, "
                         "/who, /quit" % (c.local(), online))
        return c

    def test_relay_and_notices(self):
        with Server("tcp_chat", self.HOST) as srv:
            a = self.join(srv, 1)
            b = self.join(srv, 2)
            self.assertEqual(a.line(), "* %s joined, 2 online" % b.local())
            c = self.join(srv, 3)
            for x in (a, b):
                self.assertEqual(x.line(), "* %s joined, 3 online"
                                 % c.local())
            bname = b.local()
            # Several lines in one write, CRLF too; not echoed to b.
            b.send("hello all\r\nsecond line\n")
            for x in (a, c):
                self.assertEqual(x.line(), "[%s] hello all" % bname)
                self.assertEqual(x.line(), "[%s] second line" % bname)
            a.send("/nick alice\n")
            for x in (a, b, c):
                self.assertEqual(x.line(), "* %s is now alice" % a.local())
            a.send("hi b")
            a.send(" and c\n")  # one line in two writes
            for x in (b, c):
                self.assertEqual(x.line(), "[alice] hi b and c")
            b.send("back to you\n")  # b's own lines never came back to b
            self.assertEqual(a.line(), "[%s] back to you" % bname)
            self.assertEqual(c.line(), "[%s] back to you" % bname)
            cname = c.local()
            c.close()
            for x in (a, b):
                self.assertEqual(x.line(), "* %s left (disconnected), "
                                 "2 online" % cname)
            b.send("/quit\n")
            self.assertEqual(a.line(), "* %s left (quit), 1 online" % bname)
            a.close()
            b.close()

    def test_many_clients(self):
        with Server("tcp_chat", self.HOST, "--quiet") as srv:
            members = []
            for i in range(8):
                members.append(self.join(srv, i + 1))
                for m in members[:-1]:
                    self.assertRegex(m.line(), r" joined, %d online" % (i + 1))
            for i, m in enumerate(members):
                m.send("/nick m%d\n" % i)
                for o in members:
                    self.assertIn("is now m%d" % i, o.line())
            for i, m in enumerate(members):
                m.send("from %d\n" % i)
                for j, o in enumerate(members):
                    if j != i:
                        self.assertEqual(o.line(), "[m%d] from %d" % (i, i))
            for m in members:
                m.close()


class BenchTests(Loopback):
    def test_table(self):
        start = time.monotonic()
        r = run("sockopt_bench", ["--host", self.HOST, "--seconds", 1], 20)
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        header = [i for i, line in enumerate(lines)
                  if line.startswith("option set")]
        self.assertEqual(len(header), 1, r.stdout)
        for col in ("SO_SNDBUF", "SO_RCVBUF", "NODELAY", "MB/s", "p50 µs",
                    "p99 µs"):
            self.assertIn(col, lines[header[0]])
        rows = lines[header[0] + 1:header[0] + 7]
        labels = ("defaults", "TCP_NODELAY", "buffers 4 KiB",
                  "buffers 64 KiB", "buffers 1 MiB", "4 KiB + NODELAY")
        for label, row in zip(labels, rows):
            self.assertTrue(row.startswith(label), row)
            fields = row[len(label):].split()
            self.assertEqual(len(fields), 7, row)
            self.assertIn(fields[2], ("on", "off"))
            self.assertGreater(float(fields[3]), 0, row)
        self.assertLess(elapsed, 10)

    def test_bad_host(self):
        r = run("sockopt_bench", ["--host", "nosuch.invalid", "--seconds",
                                  0.1], 20)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "sockopt_bench: resolve nosuch.invalid:0: "
                         "host not found\n")


class NotFoundTests(unittest.TestCase):
    def test_clients(self):
        for name in ("tcp_client", "udp_client"):
            r = run(name, ["nosuch.invalid", 80, "x"], 20)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "%s: resolve nosuch.invalid:80: host "
                             "not found\n" % name)

    def test_port_out_of_range(self):
        """A port above 65535 is an error naming it, not the port its low
        16 bits make (getaddrinfo takes 70000 as 4464 and 65536 as 0)."""
        for port in (65536, 70000):
            for name, args in (("tcp_client", ["127.0.0.1", port, "x"]),
                               ("udp_client", ["127.0.0.1", port, "x"])):
                r = run(name, args, 20)
                self.assertEqual(r.returncode, 1, name)
                self.assertEqual(r.stderr, "%s: resolve 127.0.0.1:%d: port %d "
                                 "is out of range (0-65535)\n"
                                 % (name, port, port))
            for name in ("tcp_echo_server", "ws_echo"):
                r = run(name, ["--host", "127.0.0.1", "--port", port], 20)
                self.assertEqual(r.returncode, 1, name)
                self.assertIn("port %d is out of range (0-65535)" % port,
                              r.stderr)

    def test_usage(self):
        for name, args in (("tcp_client", []), ("udp_client", ["h", "1"]),
                           ("tcp_echo_server", ["--bogus"]),
                           ("udp_echo_server", ["--drop-rate", "2"]),
                           ("tcp_chat", ["--port"]),
                           ("sockopt_bench", ["--seconds", "0"])):
            r = run(name, args, 10)
            self.assertEqual(r.returncode, 2, name)
            self.assertTrue(r.stderr.startswith("usage: " + name), r.stderr)


class TcpEchoV4(TcpEchoTests, unittest.TestCase):
    HOST = "127.0.0.1"


class TcpEchoV6(TcpEchoTests, unittest.TestCase):
    HOST = "::1"


class UdpV4(UdpTests, unittest.TestCase):
    HOST = "127.0.0.1"


class UdpV6(UdpTests, unittest.TestCase):
    HOST = "::1"


class ChatV4(ChatTests, unittest.TestCase):
    HOST = "127.0.0.1"


class ChatV6(ChatTests, unittest.TestCase):
    HOST = "::1"


class BenchV4(BenchTests, unittest.TestCase):
    HOST = "127.0.0.1"


class BenchV6(BenchTests, unittest.TestCase):
    HOST = "::1"


if __name__ == "__main__":
    unittest.main(verbosity=2)
