"""SCRAM (RFC 5802, RFC 7677) for the tests: a client for the harness's
own logins to a Dovecot that offers nothing else, and the server side of
the scripted fake server.  An implementation apart from mailfetch's
(src/sasl.c), from Python's hashlib, so each checks the other."""

import base64
import hashlib
import hmac
import os

HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}


def _h(name):
    return HASHES[name.replace("-PLUS", "")]


def keys(mech, password, salt, iterations):
    """(StoredKey, ServerKey) for password."""
    hn = _h(mech)
    salted = hashlib.pbkdf2_hmac(hn, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hn).digest()
    return hashlib.new(hn, client_key).digest(), hmac.new(salted, b"Server Key", hn).digest()


def saslname(s):
    return s.replace("=", "=3D").replace(",", "=2C")


def parse(msg):
    """"a=1,b=2" -> [("a", "1"), ("b", "2")] (values may hold '=')."""
    out = []
    for part in msg.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ValueError("malformed SCRAM attribute %r" % part)
        out.append((part[0], part[2:]))
    return out


class Client:
    """An imaplib authobject: imap.authenticate("SCRAM-SHA-256", Client(...))."""

    def __init__(self, mech, user, password):
        self.mech, self.user, self.password = mech, user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.step = 0
        self.server_sig = None

    def __call__(self, challenge):
        self.step += 1
        if self.step == 1:
            self.first_bare = "n=%s,r=%s" % (saslname(self.user), self.nonce)
            return ("n,," + self.first_bare).encode()
        if self.step == 2:
            sf = challenge.decode()
            attrs = dict(parse(sf))
            if not attrs["r"].startswith(self.nonce):
                raise ValueError("server nonce does not extend ours")
            hn = _h(self.mech)
            salted = hashlib.pbkdf2_hmac(hn, self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
            client_key = hmac.new(salted, b"Client Key", hn).digest()
            stored = hashlib.new(hn, client_key).digest()
            without = "c=%s,r=%s" % (base64.b64encode(b"n,,").decode(), attrs["r"])
            auth_msg = ",".join((self.first_bare, sf, without)).encode()
            sig = hmac.new(stored, auth_msg, hn).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, sig))
            server_key = hmac.new(salted, b"Server Key", hn).digest()
            self.server_sig = hmac.new(server_key, auth_msg, hn).digest()
            return (without + ",p=" + base64.b64encode(proof).decode()).encode()
        v = dict(parse(challenge.decode())).get("v")
        if v is None or base64.b64decode(v) != self.server_sig:
            raise ValueError("bad SCRAM server signature")
        return b""


class Server:
    """The server's side of one exchange.  first(client_first) -> server
    first message; final(client_final) -> (ok, server final message or
    error text).  cb_data: the channel binding data this server sees
    (for -PLUS), or None."""

    def __init__(self, mech, user, password, salt=b"fake-salt-1234", iterations=4096, nonce_suffix=None,
                 cb_data=None):
        self.mech, self.user, self.password = mech, user, password
        self.salt, self.iterations = salt, iterations
        self.nonce_suffix = nonce_suffix or base64.b64encode(os.urandom(18)).decode()
        self.cb_data = cb_data

    def first(self, client_first, nonce=None, iterations=None, salt_b64=None):
        """nonce / iterations / salt_b64 override what is sent (faults)."""
        parts = client_first.split(",", 2)
        if len(parts) != 3:
            raise ValueError("malformed client-first %r" % client_first)
        self.gs2 = parts[0] + "," + parts[1] + ","
        self.first_bare = parts[2]
        attrs = dict(parse(self.first_bare))
        self.client_nonce = attrs["r"]
        self.got_user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
        self.nonce = nonce if nonce is not None else self.client_nonce + self.nonce_suffix
        it = self.iterations if iterations is None else iterations
        salt = base64.b64encode(self.salt).decode() if salt_b64 is None else salt_b64
        self.server_first = "r=%s,s=%s,i=%s" % (self.nonce, salt, it)
        return self.server_first

    def final(self, client_final):
        """(ok, text): text is the server-final message (v=... or e=...)."""
        hn = _h(self.mech)
        without, _, proof = client_final.rpartition(",p=")
        attrs = dict(parse(without))
        expect_c = self.gs2.encode() + (self.cb_data or b"" if self.mech.endswith("-PLUS") else b"")
        if base64.b64decode(attrs["c"]) != expect_c:
            return False, "e=channel-bindings-dont-match"
        if attrs["r"] != self.nonce:
            return False, "e=other-error"
        stored, server_key = keys(self.mech, self.password, self.salt, self.iterations)
        auth_msg = ",".join((self.first_bare, self.server_first, without)).encode()
        sig = hmac.new(stored, auth_msg, hn).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), sig))
        if self.got_user != self.user or hashlib.new(hn, client_key).digest() != stored:
            return False, "e=invalid-proof"
        return True, "v=" + base64.b64encode(hmac.new(server_key, auth_msg, hn).digest()).decode()
