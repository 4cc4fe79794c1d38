//! Known answers computed independently by `scripts/kat_derivation.py` (plain Python: hashlib's
//! SHA3-256 and textbook secp256k1 arithmetic), so a slip in the Rust derivation cannot hide.

use chainsig_primitives::derivation::{derive_secret_key, tweak_digest};
use chainsig_primitives::k256::elliptic_curve::PrimeField;
use chainsig_primitives::k256::{FieldBytes, ProjectivePoint, Scalar};
use chainsig_primitives::{derive_public_key, derive_tweak, PublicKey};

const ROOT_SECRET: &str = "e8a495a9fa68c4ad3aaf5b70a3b0177caec029ac4b03e96471a549d7acb744c1";
const ROOT_COMPRESSED: &str = "0328e30c53e8ce2eaf4b39c2a3828bed7fae705d514d2b7b1136dc6fd27b8b5961";
const ROOT_NEAR: &str = "secp256k1:pQwJPcrsesSi9CVXHmfNRmgc21iVNo74oQFqKw6BmYFAeQpDq8xpN5sXp3WgvVZRQiZ3Ti1xxy4T79Uyfkhxihi";

struct Case {
    account: &'static str,
    path: &'static str,
    tweak: &'static str,
    derived_compressed: &'static str,
    derived_near: &'static str,
}

const CASES: &[Case] = &[
    Case {
        account: "alice.near",
        path: "ethereum-1",
        tweak: "e4c9cc34fcc5f69fde83609d2f7739b541faa56c74cee872b220bdc3a85d1d4d",
        derived_compressed: "02cc1b0ee5784c07ac9d024f10321084488af2c99b4d6637cdf0c5fac542190e49",
        derived_near: "secp256k1:55gZjK8KQAspHwTjR5BXfSw51kFKu4SVzcxPPqJtAgs5Wm4q2yv2LRYbNtufEc2UQ4Vy2FCMNvrXRDnd8ZBXndL9",
    },
    Case {
        account: "bob.testnet",
        path: "",
        tweak: "0779afe8e288c7ed2204b670c87a016a1a3d889f9796d5fec0eef7fd9d081a7c",
        derived_compressed: "0222377e1c9a3e27cdb04927692ce644284a627b26f3c000fbca5a575ca7ae84ab",
        derived_near: "secp256k1:ggKfUBY85jU2F7ohuy5PdKK5Agdxk42KMxqBE6CdVfMngwYJWKxrRvysaNyJJXTqcc5XM5vprYjz1QQhx4yhgo3",
    },
    Case {
        account: "dev-1.test.near",
        path: "bitcoin,1/ünï",
        tweak: "ee034503db2fc79c365963460c11f921dcd3c2055e9236debc7db06049c8383b",
        derived_compressed: "02e73ed0cfb57d0247b5364565a02854a93a1a8b022ae19a97d72f5e166a364bdf",
        derived_near: "secp256k1:5d9uGqXwjbjJhVQvC4JiqBvbAoDSdkjzBW4a52zR7KqeNfKDFSfdvFbiJ6ZzL6P9PjpAEY5Lambyd5CyPvDWDsQM",
    },
];

fn root_secret() -> Scalar {
    let bytes: [u8; 32] = hex::decode(ROOT_SECRET).unwrap().try_into().unwrap();
    Scalar::from_repr(FieldBytes::from(bytes)).unwrap()
}

#[test]
fn root_key_forms_match_the_independent_computation() {
    let root =
        PublicKey::from_affine((ProjectivePoint::GENERATOR * root_secret()).to_affine()).unwrap();
    assert_eq!(hex::encode(root.to_sec1_compressed()), ROOT_COMPRESSED);
    assert_eq!(root.to_near_string(), ROOT_NEAR);
    assert_eq!(PublicKey::parse(ROOT_NEAR).unwrap(), root);
    assert_eq!(PublicKey::parse(ROOT_COMPRESSED).unwrap(), root);
    let uncompressed = format!("0x{}", hex::encode(root.to_sec1_uncompressed()));
    assert_eq!(PublicKey::parse(&uncompressed).unwrap(), root);
}

#[test]
fn tweaks_and_derived_keys_match_the_independent_computation() {
    let root = PublicKey::parse(ROOT_NEAR).unwrap();
    for case in CASES {
        let tweak = derive_tweak(case.account, case.path).unwrap();
        assert_eq!(tweak.to_hex(), case.tweak, "tweak of {}", case.account);
        assert_eq!(
            hex::encode(tweak_digest(case.account, case.path)),
            case.tweak
        );

        let derived =
            PublicKey::from_affine(derive_public_key(root.as_affine(), &tweak).unwrap()).unwrap();
        assert_eq!(
            hex::encode(derived.to_sec1_compressed()),
            case.derived_compressed
        );
        assert_eq!(derived.to_near_string(), case.derived_near);

        let secret = derive_secret_key(&root_secret(), &tweak);
        assert_eq!(
            (ProjectivePoint::GENERATOR * secret).to_affine(),
            *derived.as_affine()
        );
    }
}
