#!/usr/bin/env python3
"""Independent computation of a signed P2WPKH spend, byte for byte.

Reuses the textbook pieces of kat_addresses.py (secp256k1, HASH160, bech32) and the RFC 6979
signer of kat_eth_tx.py; adds transaction serialization, the fee and change arithmetic, the
BIP143 sighash, and DER. The Rust test tests/btc.rs (`signed_spend_matches_the_independent_
computation`) compares the fee, the raw transaction and the txid against what this prints.

Run: python3 crates/chains/scripts/kat_btc_tx.py
"""
import contextlib
import hashlib
import importlib.util
import io
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        spec.loader.exec_module(module)
    return module


kat = load("kat_addresses")
ethkat = load("kat_eth_tx")
N, G = kat.N, kat.G


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def varint(n):
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def der(r, s):
    def integer(x):
        raw = x.to_bytes((x.bit_length() + 7) // 8, "big")
        if raw[0] & 0x80:
            raw = b"\x00" + raw
        return b"\x02" + bytes([len(raw)]) + raw
    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def bech32_decode_program(address):
    """The witness program of a segwit v0 address (checksum assumed valid: it is ours)."""
    data = address[address.rindex("1") + 1:-6]
    values = [kat.CHARSET.index(c) for c in data][1:]  # drop the witness version
    acc, bits, out = 0, 0, []
    for v in values:
        acc = (acc << 5) | v
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def p2wpkh_or_wsh_script(address):
    program = bech32_decode_program(address)
    return b"\x00" + bytes([len(program)]) + program


# --- the spend -----------------------------------------------------------------------------
root_secret = int.from_bytes(hashlib.sha256(b"chainsig test root key").digest(), "big") % N
account, path = "bob.testnet", "bitcoin-1"
tweak = int.from_bytes(
    hashlib.sha3_256((kat.PREFIX + account + "," + path).encode()).digest(), "big")
secret = (root_secret + tweak) % N
public = kat.point_mul(secret, G)
pubkey = kat.compressed(public)
own = kat.p2wpkh(public, "regtest")
assert own == "bcrt1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfxjv9u2a"
own_script = b"\x00\x14" + kat.hash160(pubkey)

TXID_A = "1111111111111111111111111111111111111111111111111111111111111111"
TXID_B = "a3b8c9d0e1f2a3b8c9d0e1f2a3b8c9d0e1f2a3b8c9d0e1f2a3b8c9d0e1f20304"
inputs = [(TXID_A, 0, 50_000), (TXID_B, 3, 70_000)]
payments = [
    ("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 60_000),
    ("bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry", 25_000),
]
millisat_per_vb = 2_500
SEQUENCE = 0xFFFFFFFD  # opts in to replace-by-fee, no relative lock time
VERSION, LOCKTIME = 2, 0

outputs = [(p2wpkh_or_wsh_script(a), sats) for a, sats in payments]


def predicted_vsize(n_inputs, scripts):
    base = 4 + len(varint(n_inputs)) + n_inputs * (32 + 4 + 1 + 4) + len(varint(len(scripts)))
    base += sum(8 + len(varint(len(s))) + len(s) for s in scripts) + 4
    witness = 2 + n_inputs * (1 + 1 + 72 + 1 + 33)  # marker+flag; worst-case DER signature
    weight = 4 * base + witness
    return (weight + 3) // 4


total_in = sum(sats for _, _, sats in inputs)
total_out = sum(sats for _, sats in outputs)
vsize = predicted_vsize(len(inputs), [s for s, _ in outputs] + [own_script])
fee = (millisat_per_vb * vsize + 999) // 1000
change = total_in - total_out - fee
assert change >= 294  # not dust for P2WPKH
outputs.append((own_script, change))


def outpoint(txid, vout):
    return bytes.fromhex(txid)[::-1] + vout.to_bytes(4, "little")


def serialize_outputs():
    return b"".join(sats.to_bytes(8, "little") + varint(len(s)) + s for s, sats in outputs)


# BIP143 for SIGHASH_ALL.
hash_prevouts = sha256d(b"".join(outpoint(t, v) for t, v, _ in inputs))
hash_sequence = sha256d(b"".join(SEQUENCE.to_bytes(4, "little") for _ in inputs))
hash_outputs = sha256d(serialize_outputs())
script_code = b"\x19\x76\xa9\x14" + kat.hash160(pubkey) + b"\x88\xac"
witnesses = []
for txid, vout, sats in inputs:
    preimage = (VERSION.to_bytes(4, "little") + hash_prevouts + hash_sequence
                + outpoint(txid, vout) + script_code + sats.to_bytes(8, "little")
                + SEQUENCE.to_bytes(4, "little") + hash_outputs
                + LOCKTIME.to_bytes(4, "little") + (1).to_bytes(4, "little"))
    sighash = sha256d(preimage)
    r, s, _ = ethkat.sign(secret, sighash)
    assert ethkat.verify(public, sighash, r, s)
    signature = der(r, s) + b"\x01"
    witnesses.append(varint(2) + varint(len(signature)) + signature
                     + varint(len(pubkey)) + pubkey)

body_inputs = varint(len(inputs)) + b"".join(
    outpoint(t, v) + b"\x00" + SEQUENCE.to_bytes(4, "little") for t, v, _ in inputs)
body_outputs = varint(len(outputs)) + serialize_outputs()
legacy = VERSION.to_bytes(4, "little") + body_inputs + body_outputs + LOCKTIME.to_bytes(4, "little")
raw = (VERSION.to_bytes(4, "little") + b"\x00\x01" + body_inputs + body_outputs
       + b"".join(witnesses) + LOCKTIME.to_bytes(4, "little"))
txid = sha256d(legacy)[::-1].hex()
print(f"from {own}")
print(f"predicted_vsize {vsize}")
print(f"fee {fee}")
print(f"change {change}")
print(f"raw_transaction {raw.hex()}")
print(f"txid {txid}")
