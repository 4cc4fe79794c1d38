//! Rules that hold for every input.

use chainsig_primitives::derivation::derive_secret_key;
use chainsig_primitives::k256::ecdsa::SigningKey;
use chainsig_primitives::k256::elliptic_curve::PrimeField;
use chainsig_primitives::k256::{FieldBytes, ProjectivePoint, Scalar};
use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, EcdsaSignature, PublicKey, SignRequest,
    SignatureResponse,
};
use proptest::prelude::*;

fn nonzero_scalar() -> impl Strategy<Value = Scalar> {
    any::<[u8; 32]>().prop_filter_map("not a non-zero scalar", |bytes| {
        Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(bytes)))
            .filter(|s| !bool::from(s.is_zero()))
    })
}

fn payload() -> impl Strategy<Value = EcdsaPayload> {
    any::<[u8; 32]>().prop_filter_map("payload not below n", |b| EcdsaPayload::from_bytes(b).ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A signature made with `root_secret + tweak` verifies under `root + tweak·G`, and the
    /// recovery id recovers exactly that key.
    #[test]
    fn derived_secret_signs_for_derived_public_key(
        root_secret in nonzero_scalar(),
        account in "[a-z0-9_.-]{2,64}",
        path in ".{0,40}",
        payload in payload(),
    ) {
        let root = (ProjectivePoint::GENERATOR * root_secret).to_affine();
        let tweak = derive_tweak(&account, &path).unwrap();
        let derived = PublicKey::from_affine(derive_public_key(&root, &tweak).unwrap()).unwrap();
        let secret = derive_secret_key(&root_secret, &tweak);
        let key = SigningKey::from_bytes(&secret.to_bytes()).unwrap();
        let (sig, _) = key.sign_prehash_recoverable(payload.as_bytes()).unwrap();

        let s_inv = sig.s().invert().unwrap();
        let big_r = (ProjectivePoint::GENERATOR * (payload.to_scalar() * s_inv)
            + ProjectivePoint::from(*derived.as_affine()) * (*sig.r() * s_inv)).to_affine();
        let signature = EcdsaSignature::normalize(big_r, *sig.s(), &derived, &payload).unwrap();
        prop_assert_eq!(signature.recover(&payload).unwrap(), derived);
        prop_assert!(derived.as_affine() == key.verifying_key().as_affine());

        // The same signature must not verify for another payload or another path's key.
        let other = derive_public_key(&root, &derive_tweak(&account, &format!("{path}x")).unwrap()).unwrap();
        prop_assert!(signature.verify(&PublicKey::from_affine(other).unwrap(), &payload).is_err());
    }

    /// Normalization accepts high-s input and always yields a low-s signature whose
    /// recovery id is consistent, whatever the sign of s was.
    #[test]
    fn normalize_flips_high_s(secret in nonzero_scalar(), payload in payload()) {
        let key = SigningKey::from_bytes(&secret.to_bytes()).unwrap();
        let public_key = PublicKey::from_affine(*key.verifying_key().as_affine()).unwrap();
        let (sig, _) = key.sign_prehash_recoverable(payload.as_bytes()).unwrap();
        let s_inv = sig.s().invert().unwrap();
        let big_r = (ProjectivePoint::GENERATOR * (payload.to_scalar() * s_inv)
            + ProjectivePoint::from(*public_key.as_affine()) * (*sig.r() * s_inv)).to_affine();
        // (-R, -s) is the same signature in its other form.
        let flipped = EcdsaSignature::normalize(-big_r, -*sig.s(), &public_key, &payload).unwrap();
        let direct = EcdsaSignature::normalize(big_r, *sig.s(), &public_key, &payload).unwrap();
        prop_assert_eq!(flipped, direct);
        let k256_sig = direct.to_k256().unwrap();
        prop_assert!(k256_sig.normalize_s().is_none());
        use chainsig_primitives::k256::ecdsa::signature::hazmat::PrehashVerifier;
        prop_assert!(key.verifying_key().verify_prehash(payload.as_bytes(), &k256_sig).is_ok());
    }

    /// Parsers of outside data return errors, never panic.
    #[test]
    fn parsers_never_panic(text in ".{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = PublicKey::parse(&text);
        let _ = PublicKey::from_sec1(&bytes);
        let _ = PublicKey::from_xy(&bytes);
        let _ = EcdsaPayload::from_hex(&text);
        let _ = serde_json::from_str::<SignRequest>(&text);
        let _ = serde_json::from_str::<SignatureResponse>(&text);
        let _ = serde_json::from_slice::<SignRequest>(&bytes);
    }

    #[test]
    fn payload_validity_is_exactly_below_the_order(bytes in any::<[u8; 32]>()) {
        let is_scalar = bool::from(Scalar::from_repr(FieldBytes::from(bytes)).is_some());
        prop_assert_eq!(EcdsaPayload::from_bytes(bytes).is_ok(), is_scalar);
    }
}

#[test]
fn derivation_is_deterministic_and_path_sensitive() {
    let a = derive_tweak("alice.near", "eth").unwrap();
    assert_eq!(a, derive_tweak("alice.near", "eth").unwrap());
    assert_ne!(a, derive_tweak("alice.near", "eth2").unwrap());
    assert_ne!(a, derive_tweak("alice.nea", "reth").unwrap());
    let _ = derive_secret_key(&Scalar::ONE, &a);
}
