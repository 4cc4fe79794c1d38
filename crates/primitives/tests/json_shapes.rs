//! The JSON that existing clients send and expect, byte for byte.

use chainsig_primitives::k256::ecdsa::SigningKey;
use chainsig_primitives::{
    DomainId, EcdsaPayload, EcdsaSignature, Payload, PublicKey, SignRequest, SignatureRequest,
    SignatureResponse,
};
use serde_json::{json, Value};

const PAYLOAD_HEX: &str = "b1f0c36fcd4e5d8ad1d9a4e4ad5bd3ee83d1d4e5c4e0f21b2e6e7f6a8f9e0d1c";

fn payload_bytes() -> Vec<u8> {
    hex::decode(PAYLOAD_HEX).unwrap()
}

#[test]
fn v2_request_round_trips_exactly() {
    let input = json!({"path": "ethereum-1", "payload_v2": {"Ecdsa": PAYLOAD_HEX}, "domain_id": 0});
    let request: SignRequest = serde_json::from_value(input.clone()).unwrap();
    assert_eq!(request.path, "ethereum-1");
    assert_eq!(
        request.payload.as_bytes().as_slice(),
        payload_bytes().as_slice()
    );
    assert_eq!(request.domain_id, DomainId(0));
    assert_eq!(serde_json::to_value(&request).unwrap(), input);
}

#[test]
fn legacy_request_parses_to_the_same_request() {
    let legacy = json!({"payload": payload_bytes(), "path": "ethereum-1", "key_version": 0});
    let v2 = json!({"path": "ethereum-1", "payload_v2": {"Ecdsa": PAYLOAD_HEX.to_uppercase()}});
    let from_legacy: SignRequest = serde_json::from_value(legacy).unwrap();
    let from_v2: SignRequest = serde_json::from_value(v2).unwrap();
    assert_eq!(from_legacy, from_v2);
}

fn parse_error(value: Value) -> String {
    serde_json::from_value::<SignRequest>(value)
        .unwrap_err()
        .to_string()
}

#[test]
fn malformed_requests_are_refused_with_a_reason() {
    let n_hex = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    let cases = [
        (
            json!({"path": "p", "payload_v2": {"Ecdsa": n_hex}}),
            "below the secp256k1 group order",
        ),
        (
            json!({"path": "p", "payload_v2": {"Ecdsa": "abcd"}}),
            "expected 32 bytes",
        ),
        (
            json!({"path": "p", "payload_v2": {"Ecdsa": "zz".repeat(32)}}),
            "invalid hex",
        ),
        (
            json!({"path": "p", "payload": [1, 2, 3]}),
            "expected 32 bytes, got 3",
        ),
        (
            json!({"path": "p", "payload": vec![255u8; 32]}),
            "below the secp256k1 group order",
        ),
        (json!({"path": "p"}), "missing payload"),
        (
            json!({"path": "p", "payload": vec![1u8; 32], "payload_v2": {"Ecdsa": PAYLOAD_HEX}}),
            "not both",
        ),
        (
            json!({"path": "p", "payload": vec![1u8; 32], "key_version": 0, "domain_id": 0}),
            "not both",
        ),
        (
            json!({"path": "p", "payload_v2": {"Ecdsa": PAYLOAD_HEX}, "domain_id": 7}),
            "unknown domain 7",
        ),
        (
            json!({"path": "x".repeat(1025), "payload_v2": {"Ecdsa": PAYLOAD_HEX}}),
            "at most 1024",
        ),
        (
            json!({"path": "p", "payload_v2": {"Ecdsa": PAYLOAD_HEX}, "extra": 1}),
            "unknown field",
        ),
        (
            json!({"payload_v2": {"Ecdsa": PAYLOAD_HEX}}),
            "missing field `path`",
        ),
        (
            json!({"path": "p", "payload_v2": {"Eddsa": PAYLOAD_HEX}}),
            "unknown variant",
        ),
    ];
    for (input, expected) in cases {
        let error = parse_error(input.clone());
        assert!(
            error.contains(expected),
            "{input}: `{error}` lacks `{expected}`"
        );
    }
}

fn example_signature() -> (EcdsaSignature, PublicKey, EcdsaPayload) {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let payload = EcdsaPayload::from_hex(PAYLOAD_HEX).unwrap();
    let (sig, _) = key.sign_prehash_recoverable(payload.as_bytes()).unwrap();
    let public_key = PublicKey::from_affine(*key.verifying_key().as_affine()).unwrap();
    // Rebuild R from the signature by recovery, then normalize through our own path.
    let big_r = nonce_point(&sig, &public_key, &payload);
    let signature = EcdsaSignature::normalize(big_r, *sig.s(), &public_key, &payload).unwrap();
    (signature, public_key, payload)
}

/// `R = (z/s)·G + (r/s)·Q`, computed here independently of the crate.
fn nonce_point(
    sig: &chainsig_primitives::k256::ecdsa::Signature,
    public_key: &PublicKey,
    payload: &EcdsaPayload,
) -> chainsig_primitives::k256::AffinePoint {
    use chainsig_primitives::k256::ProjectivePoint;
    let s_inv = sig.s().invert().unwrap();
    (ProjectivePoint::GENERATOR * (payload.to_scalar() * s_inv)
        + ProjectivePoint::from(*public_key.as_affine()) * (*sig.r() * s_inv))
        .to_affine()
}

#[test]
fn response_has_the_compat_shape_and_round_trips() {
    let (signature, public_key, payload) = example_signature();
    let value = serde_json::to_value(SignatureResponse::Secp256k1(signature)).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), 4);
    assert_eq!(object["scheme"], "Secp256k1");
    let big_r = object["big_r"]["affine_point"].as_str().unwrap();
    assert_eq!(big_r.len(), 66);
    assert!(big_r.starts_with("02") || big_r.starts_with("03"));
    assert_eq!(big_r, big_r.to_uppercase());
    assert_eq!(object["s"]["scalar"].as_str().unwrap().len(), 64);
    assert!(object["recovery_id"] == 0 || object["recovery_id"] == 1);

    let back: SignatureResponse = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, SignatureResponse::Secp256k1(signature));
    // Clients may send lower-case hex; it means the same.
    let lower = serde_json::to_string(&value)
        .unwrap()
        .to_lowercase()
        .replace("secp256k1", "Secp256k1");
    let back: SignatureResponse = serde_json::from_str(&lower).unwrap();
    let SignatureResponse::Secp256k1(parsed) = back;
    parsed.verify(&public_key, &payload).unwrap();
}

#[test]
fn malformed_responses_are_refused() {
    let (signature, _, _) = example_signature();
    let good = serde_json::to_value(SignatureResponse::Secp256k1(signature)).unwrap();
    let mut not_on_curve = good.clone();
    not_on_curve["big_r"]["affine_point"] = json!(format!("02{}", "00".repeat(31) + "05"));
    let mut infinity = good.clone();
    infinity["big_r"]["affine_point"] = json!("00".repeat(33));
    let mut high_s = good.clone();
    high_s["s"]["scalar"] = json!(hex::encode((-*signature.s()).to_bytes()));
    let mut s_too_big = good.clone();
    s_too_big["s"]["scalar"] = json!("ff".repeat(32));
    let mut bad_recovery = good.clone();
    bad_recovery["recovery_id"] = json!(2);
    let mut wrong_scheme = good.clone();
    wrong_scheme["scheme"] = json!("Ed25519");
    let mut short_r = good.clone();
    short_r["big_r"]["affine_point"] = json!("02abcd");
    for bad in [
        not_on_curve,
        infinity,
        high_s,
        s_too_big,
        bad_recovery,
        wrong_scheme,
        short_r,
    ] {
        assert!(
            serde_json::from_value::<SignatureResponse>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn signature_request_identity_round_trips() {
    let request: SignRequest =
        serde_json::from_value(json!({"path": "a", "payload_v2": {"Ecdsa": PAYLOAD_HEX}})).unwrap();
    let identity = request.signature_request("alice.near").unwrap();
    let value = serde_json::to_value(identity).unwrap();
    assert_eq!(
        value,
        json!({"tweak": identity.tweak.to_hex(), "payload": {"Ecdsa": PAYLOAD_HEX}, "domain_id": 0})
    );
    let back: SignatureRequest = serde_json::from_value(value).unwrap();
    assert_eq!(back, identity);
    assert_eq!(
        back.payload,
        Payload::Ecdsa(EcdsaPayload::from_hex(PAYLOAD_HEX).unwrap())
    );
}

#[test]
fn public_key_parsers_refuse_garbage() {
    let cases = [
        "",
        "secp256k1:",
        "secp256k1:0OIl",
        "secp256k1:3yZe7d",
        "ed25519:6E8sCci9badyRkXb3JoRpBj5p8C6Tw41ELDZoiihKEtp",
        "02",
        "zz",
        &format!("04{}", "11".repeat(64)),
        &format!("02{}", "ff".repeat(32)),
        &"00".repeat(33),
    ];
    for input in cases {
        assert!(PublicKey::parse(input).is_err(), "{input:?} parsed");
    }
    let json_err = serde_json::from_value::<PublicKey>(json!("secp256k1:abc")).unwrap_err();
    assert!(
        json_err.to_string().contains("expected 64 bytes"),
        "{json_err}"
    );
}
