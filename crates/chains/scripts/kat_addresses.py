#!/usr/bin/env python3
"""Independent computation of the destination-chain address known answers.

Pure Python 3 standard library, sharing no code with the Rust crates: textbook secp256k1
arithmetic, a from-scratch Keccak-256 (hashlib's sha3_256 is the NIST padding, not Keccak),
EIP-55 checksums, hashlib's SHA-256/RIPEMD-160 for HASH160, and a from-scratch BIP-173 bech32
encoder. The Rust tests in tests/addresses.rs compare against what this prints.

Run: python3 crates/chains/scripts/kat_addresses.py
"""
import hashlib

# --- secp256k1 ---------------------------------------------------------------------------
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
PREFIX = "near-mpc-recovery v0.1.0 epsilon derivation:"


def point_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return (x, (lam * (a[0] - x) - a[1]) % P)


def point_mul(k, pt):
    out = None
    while k:
        if k & 1:
            out = point_add(out, pt)
        pt = point_add(pt, pt)
        k >>= 1
    return out


def compressed(pt):
    return bytes([3 if pt[1] & 1 else 2]) + pt[0].to_bytes(32, "big")


# --- Keccak-256 (the pre-NIST padding Ethereum uses) ---------------------------------------
ROUND_CONSTANTS = []
ROTATIONS = [[0] * 5 for _ in range(5)]


def _init_tables():
    # Round constants from the degree-8 LFSR of the Keccak reference.
    r = 1
    for _ in range(24):
        rc = 0
        for j in range(7):
            r = ((r << 1) ^ ((r >> 7) * 0x71)) % 256
            if r & 2:
                rc |= 1 << ((1 << j) - 1)
        ROUND_CONSTANTS.append(rc)
    # Rotation offsets: walk (x, y) -> (y, 2x + 3y).
    x, y = 1, 0
    for t in range(24):
        ROTATIONS[x][y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5


_init_tables()
MASK = (1 << 64) - 1


def _rol(v, n):
    return ((v << n) | (v >> (64 - n))) & MASK if n else v


def _keccak_f(a):
    for rc in ROUND_CONSTANTS:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rol(a[x][y], ROTATIONS[x][y])
        a = [[b[x][y] ^ ((~b[(x + 1) % 5][y]) & b[(x + 2) % 5][y]) for y in range(5)]
             for x in range(5)]
        a[0][0] ^= rc
    return a


def keccak256(data):
    rate = 136
    msg = bytearray(data) + b"\x01"
    while len(msg) % rate:
        msg += b"\x00"
    msg[-1] |= 0x80
    state = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            state[i % 5][i // 5] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        state = _keccak_f(state)
    out = b"".join(state[i % 5][i // 5].to_bytes(8, "little") for i in range(4))
    return out


def eip55(addr20):
    lower = addr20.hex()
    digest = keccak256(lower.encode()).hex()
    return "0x" + "".join(ch.upper() if int(digest[i], 16) >= 8 else ch
                          for i, ch in enumerate(lower))


def evm_address(pt):
    raw = pt[0].to_bytes(32, "big") + pt[1].to_bytes(32, "big")
    return eip55(keccak256(raw)[-20:])


# --- bech32 (BIP-173) for segwit v0 ---------------------------------------------------------
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_5bit(data):
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def bech32_segwit_v0(hrp, program):
    data = [0] + _to_5bit(program)
    poly = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def hash160(data):
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


HRPS = {"mainnet": "bc", "testnet": "tb", "regtest": "bcrt"}


def p2wpkh(pt, network):
    return bech32_segwit_v0(HRPS[network], hash160(compressed(pt)))


# --- self-checks against published vectors ---------------------------------------------------
assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
# The address of secret key 1 (well known), and BIP-173's example for the generator point.
assert evm_address(G) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
assert p2wpkh(G, "mainnet") == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
assert p2wpkh(G, "testnet") == "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
# EIP-55's own examples.
for example in ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
                "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
                "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"]:
    assert eip55(bytes.fromhex(example[2:])) == example

# --- the known answers ---------------------------------------------------------------------
root_secret = int.from_bytes(hashlib.sha256(b"chainsig test root key").digest(), "big") % N
root = point_mul(root_secret, G)
print(f"root secret {root_secret:064x}")
print(f"root compressed {compressed(root).hex()}")
for account, path in [("alice.near", "ethereum-1"), ("bob.testnet", "bitcoin-1"),
                      ("dev-1.test.near", "")]:
    tweak = int.from_bytes(hashlib.sha3_256((PREFIX + account + "," + path).encode()).digest(),
                           "big")
    assert tweak < N
    derived = point_add(root, point_mul(tweak, G))
    print(f"{account!r} {path!r}")
    print(f"  derived compressed {compressed(derived).hex()}")
    print(f"  evm_address {evm_address(derived)}")
    for network in ["mainnet", "testnet", "regtest"]:
        print(f"  btc_p2wpkh {network} {p2wpkh(derived, network)}")
