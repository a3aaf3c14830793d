"""The CurveZMQ ZAP handler: who is admitted, and that it always stops."""

import time

import pytest
import zmq
import zmq.auth
from zmq.utils import z85

from samem.errors import SamemError
from samem.stream.zap import CurveAuthenticator, authorized_keys, decide


@pytest.fixture()
def keys(tmp_path):
    (tmp_path / "ok").mkdir()
    public_file, _ = zmq.auth.create_certificates(tmp_path / "ok", "client")
    public, _ = zmq.auth.load_certificate(public_file)
    stranger, _ = zmq.auth.load_certificate(zmq.auth.create_certificates(tmp_path, "stranger")[0])
    return tmp_path / "ok", public, stranger


def _request(mechanism=b"CURVE", credentials=()):
    return [b"1.0", b"7", b"", b"127.0.0.1", b"", mechanism, *credentials]


def test_only_listed_curve_keys_are_admitted(keys):
    folder, public, stranger = keys
    allowed = authorized_keys(folder)
    assert allowed == {public}
    ok = decide(_request(credentials=[z85.decode(public)]), allowed)
    assert ok[:3] == [b"1.0", b"7", b"200"] and ok[4] == public
    assert decide(_request(credentials=[z85.decode(stranger)]), allowed)[2] == b"400"
    assert decide(_request(b"NULL"), allowed)[2] == b"400"
    assert decide(_request(b"PLAIN", [b"user", b"password"]), allowed)[2] == b"400"
    assert decide(_request(credentials=[b"short"]), allowed)[2] == b"400"
    assert decide([b"1.0", b"7"], allowed)[2] == b"500"
    assert decide([b"2.0", *_request()[1:]], allowed)[2] == b"500"


def test_bad_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SamemError, match="not a folder"):
        authorized_keys(tmp_path / "missing")


def test_admits_and_refuses_real_clients_and_stops_promptly(keys, tmp_path):
    folder, _, _ = keys
    server_public, server_secret = zmq.auth.load_certificate(
        zmq.auth.create_certificates(tmp_path, "server")[1]
    )
    ctx = zmq.Context()
    auth = CurveAuthenticator(ctx, folder)
    server = ctx.socket(zmq.PULL)
    server.setsockopt(zmq.LINGER, 0)
    server.curve_server = True
    server.curve_publickey, server.curve_secretkey = server_public, server_secret
    port = server.bind_to_random_port("tcp://127.0.0.1")
    clients = []
    try:
        for name, cert_dir in (("stranger", tmp_path), ("client", folder)):
            public, secret = zmq.auth.load_certificate(cert_dir / f"{name}.key_secret")
            c = ctx.socket(zmq.PUSH)
            c.setsockopt(zmq.LINGER, 0)
            c.curve_serverkey, c.curve_publickey, c.curve_secretkey = server_public, public, secret
            c.connect(f"tcp://127.0.0.1:{port}")
            c.send(name.encode())
            clients.append(c)
        assert server.poll(10000)
        assert server.recv() == b"client"  # the stranger's message never arrives
        assert not server.poll(300)
        assert auth.admitted >= 1 and auth.refused >= 1
    finally:
        for c in clients:
            c.close(0)
        server.close(0)
        started = time.monotonic()
        auth.stop()
        assert time.monotonic() - started < 2.0
        ctx.term()  # returns: the handler closed its socket
