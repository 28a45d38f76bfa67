"""A TCP proxy for tests that cuts connections: it forwards 127.0.0.1:LISTEN <-> the broker, and for each of
the first DROPS connections closes both sides once CUT bytes of answers came back from the broker, so answers
in flight are lost while their requests reached the broker. Prints 'proxy on PORT' once listening."""
import socket
import sys
import threading

broker_port, drops, cut = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
state = {"dropped": 0}


def pump(src, dst, limit, on_limit):
    total = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if limit is not None and total + len(data) >= limit:
                dst.sendall(data[: max(0, limit - total - 1)])
                on_limit()
                return
            total += len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client):
    upstream = socket.create_connection(("127.0.0.1", broker_port))
    with lock:
        drop = state["dropped"] < drops
        if drop:
            state["dropped"] += 1

    def kill():
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    threading.Thread(target=pump, args=(client, upstream, None, None), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, cut if drop else None, kill), daemon=True).start()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print("proxy on %d" % listener.getsockname()[1], flush=True)
while True:
    c, _ = listener.accept()
    serve(c)
