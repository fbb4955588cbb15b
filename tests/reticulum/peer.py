#!/usr/bin/env python3
"""A Python Reticulum peer for lorabridge's interop tests.

It joins an rnsd through a TCPClientInterface, owns the SINGLE destination
p2panda.bridge.<network tag>, and speaks the bridges' convention: announce app
data = 0x01 followed by 2-byte topic tags; packet plaintext = the sender's
destination hash (16 bytes), the sender tag (16 bytes), then a mesh frame. The tag
is HMAC-SHA256(key, sender hash + recipient hash + frame)[:16], key = HKDF-SHA256
(salt "lorabridge reticulum sender v1") of the X25519 secret the two identities'
static keys share. It proves every packet it receives.

Commands on stdin, one per line:
  announce                  announce our destination
  send <dest hex> <hex>     send a frame to a destination whose announce we heard
  quit
Events on stdout, one JSON object per line: ready, announce, data, delivered,
send_failed.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading

import RNS

emit_lock = threading.Lock()
SENDER_SALT = b"lorabridge reticulum sender v1"


def sender_tag(ours, theirs, sender, recipient, frame):
    """The 16-byte tag proving that `sender` sent `frame` to `recipient`."""
    shared = ours.prv.exchange(theirs.pub)
    # HKDF-SHA256 (RFC 5869) with no info, 32 bytes: one expand block.
    prk = hmac.new(SENDER_SALT, shared, hashlib.sha256).digest()
    key = hmac.new(prk, b"\x01", hashlib.sha256).digest()
    return hmac.new(key, sender + recipient + frame, hashlib.sha256).digest()[:16]


def emit(**event):
    with emit_lock:
        print(json.dumps(event), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--network-tag", required=True, help="4 hex digits")
    parser.add_argument("--topics", default="", help="comma-separated 4-hex-digit tags")
    parser.add_argument("--ratchets", action="store_true",
                        help="announce ratchet keys and accept only ratchet-encrypted packets")
    args = parser.parse_args()

    aspects = ("p2panda", "bridge", args.network_tag)
    config_dir = tempfile.mkdtemp(prefix="lorabridge-rns-peer-")
    with open(os.path.join(config_dir, "config"), "w") as f:
        f.write(
            "[reticulum]\n"
            "  enable_transport = No\n"
            "  share_instance = No\n"
            "[logging]\n"
            "  loglevel = 2\n"
            "[interfaces]\n"
            "  [[rnsd]]\n"
            "    type = TCPClientInterface\n"
            "    enabled = yes\n"
            "    target_host = 127.0.0.1\n"
            f"    target_port = {args.port}\n"
        )
    RNS.Reticulum(configdir=config_dir, loglevel=RNS.LOG_ERROR)

    identity = RNS.Identity()
    me = RNS.Destination(identity, RNS.Destination.IN, RNS.Destination.SINGLE, *aspects)
    me.set_proof_strategy(RNS.Destination.PROVE_ALL)
    if args.ratchets:
        me.enable_ratchets(os.path.join(config_dir, "ratchets"))
        me.enforce_ratchets()
    tags = [bytes.fromhex(t) for t in args.topics.split(",") if t]
    app_data = bytes([1]) + b"".join(tags)

    def on_packet(data, packet):
        sender, tag, frame = data[:16], data[16:32], data[32:]
        theirs = RNS.Identity.recall(sender)
        proven = theirs is not None and hmac.compare_digest(
            tag, sender_tag(identity, theirs, sender, me.hash, frame))
        emit(event="data", sender=sender.hex(), frame=frame.hex(), sender_proven=proven,
             header_type=packet.header_type, hops=packet.hops)

    me.set_packet_callback(on_packet)

    class AnnounceHandler:
        aspect_filter = ".".join(aspects)

        def received_announce(self, destination_hash, announced_identity, app_data):
            # RNS calls this only for announces whose signature and destination hash it
            # validated; check the hash and the app data independently as well.
            expected = RNS.Destination.hash(announced_identity, *aspects)
            topics = []
            app_ok = bool(app_data) and app_data[0] == 1 and len(app_data) % 2 == 1
            if app_ok:
                topics = [app_data[i:i + 2].hex() for i in range(1, len(app_data), 2)]
            emit(event="announce", dest=destination_hash.hex(),
                 hash_ok=expected == destination_hash, app_data_ok=app_ok,
                 ratchet=RNS.Identity.get_ratchet(destination_hash) is not None,
                 topics=topics, hops=RNS.Transport.hops_to(destination_hash))

    RNS.Transport.register_announce_handler(AnnounceHandler())
    emit(event="ready", dest=me.hash.hex())

    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] == "announce":
            me.announce(app_data=app_data)
        elif parts[0] == "send":
            dest_hash = bytes.fromhex(parts[1])
            frame = bytes.fromhex(parts[2])
            peer_identity = RNS.Identity.recall(dest_hash)
            if peer_identity is None:
                emit(event="send_failed", reason="unknown destination")
                continue
            out = RNS.Destination(peer_identity, RNS.Destination.OUT, RNS.Destination.SINGLE, *aspects)
            tag = sender_tag(identity, peer_identity, me.hash, dest_hash, frame)
            receipt = RNS.Packet(out, me.hash + tag + frame).send()
            if not receipt:
                emit(event="send_failed", reason="not sent")
                continue
            receipt.set_timeout(60)
            receipt.set_delivery_callback(
                lambda r: emit(event="delivered", packet=r.hash.hex()))
            receipt.set_timeout_callback(
                lambda r: emit(event="send_failed", reason="no proof"))
    os._exit(0)


if __name__ == "__main__":
    main()
