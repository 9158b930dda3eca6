"""What both daemon sockets do with a connection (daemon/peer_server.py), over a real unix socket: the
peer is checked by the kernel's credentials, one line is read within a time limit and a length limit,
and a request that cannot be read gets the server's answer for it (Exim defers on it)."""
import asyncio
import logging
import socket

import pytest
import uvloop

from imunifyemail.daemon.peer_server import PeerCheckedServer

UNREADABLE = b"verdict=defer reason=\"bad request\""


def _serve_and_ask(tmp_path, send, allowed=frozenset({0}), read_timeout=5.0, limit=64):
    """Start a server whose answer echoes the line, let one client ``send`` (a function of its socket),
    and return (what the client read, the lines answered)."""
    path = str(tmp_path / "s.sock")
    answered = []

    async def respond(exchange):
        answered.append((exchange.line, exchange.uid))
        await exchange.send(b"echo " + exchange.line)

    async def go():
        server = PeerCheckedServer(respond, allowed, read_timeout, "only root may ask", logging.getLogger("t"),
                                   UNREADABLE, limit=limit)
        listener = await asyncio.get_running_loop().create_unix_server(server.protocol, path=path)

        def client():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(path)
                got = b""
                try:
                    send(s)
                except (ConnectionResetError, BrokenPipeError):   # closed before it was all sent
                    return got
                while True:
                    try:
                        chunk = s.recv(4096)
                    except ConnectionResetError:   # closed with the request unread
                        return got
                    if not chunk:
                        return got
                    got += chunk
        got = await asyncio.get_running_loop().run_in_executor(None, client)
        await server.finish(5)
        listener.close()
        return got
    return asyncio.run(go()), answered


def test_one_line_is_answered_and_what_follows_it_is_ignored(tmp_path):
    got, answered = _serve_and_ask(tmp_path, lambda s: s.sendall(b"SCAN id=x\nSCAN id=y\n"))
    assert got == b"echo SCAN id=x\n" and answered == [(b"SCAN id=x\n", 0)]


def test_a_line_sent_in_pieces_or_ended_by_shutdown_is_the_request(tmp_path):
    def pieces(s):
        s.sendall(b"SCAN ")
        s.sendall(b"id=x")
        s.shutdown(socket.SHUT_WR)   # Exim's readsocket ends its request this way
    got, answered = _serve_and_ask(tmp_path, pieces)
    assert got == b"echo SCAN id=x" and answered == [(b"SCAN id=x", 0)]


def test_a_line_over_the_limit_gets_the_unreadable_answer_and_reaches_nobody(tmp_path, caplog):
    got, answered = _serve_and_ask(tmp_path, lambda s: s.sendall(b"x" * 100))
    assert got == UNREADABLE and answered == []
    assert "request line longer than 64 bytes" in caplog.text


def test_a_peer_that_sends_nothing_in_time_gets_the_unreadable_answer(tmp_path, caplog):
    got, answered = _serve_and_ask(tmp_path, lambda s: None, read_timeout=0.2)
    assert got == UNREADABLE and answered == []
    assert "TimeoutError" in caplog.text


def test_a_peer_whose_uid_is_not_allowed_is_closed_unanswered(tmp_path, caplog):
    got, answered = _serve_and_ask(tmp_path, lambda s: s.sendall(b"SCAN id=x\n"), allowed=frozenset({12345}))
    assert got == b"" and answered == []
    assert "refused a request from pid" in caplog.text and "uid 0: only root may ask" in caplog.text


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_an_answer_to_a_peer_that_stopped_waiting_is_known_undelivered(tmp_path, loop_kind):
    """Exim's readsocket gives up after its timeout and closes: the daemon must know its answer reached
    nobody (it then has Exim ask again), on asyncio's loop and on uvloop's, whose write reports a broken
    pipe only later."""
    path = str(tmp_path / "s.sock")
    delivered = []

    async def go():
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()

        async def respond(exchange):
            await gone.wait()
            delivered.append(await exchange.send(b"verdict=pass"))

        server = PeerCheckedServer(respond, frozenset({0}), 5.0, "only root may ask", logging.getLogger("t"))
        listener = await loop.create_unix_server(server.protocol, path=path)

        def client(then_close: bool):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.sendall(b"SCAN id=x\n")
            s.shutdown(socket.SHUT_WR)
            if then_close:
                s.close()
                loop.call_soon_threadsafe(gone.set)
                return None
            return s
        await loop.run_in_executor(None, client, True)
        await server.finish(5)
        gone.clear()
        waiting = await loop.run_in_executor(None, client, False)
        await asyncio.sleep(0.05)
        gone.set()
        await server.finish(5)
        got = waiting.recv(100)
        waiting.close()
        listener.close()
        return got
    got = uvloop.run(go()) if loop_kind == "uvloop" else asyncio.run(go())
    assert delivered == [False, True] and got == b"verdict=pass"
