//! The node key: an ed25519 key for transport identity, with its X25519 form for Noise.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

/// An ed25519 node key. It is not an application identity: a wallet attests to it.
///
/// Cheap to clone: the key is shared. Why: every session's configuration holds the node
/// key, and inline it was 288 bytes of each idle session (issue 36, ≤ 4 KiB per session).
#[derive(Clone)]
pub struct NodeKey(std::sync::Arc<Keys>);

struct Keys {
    key: SigningKey,
    /// The Noise static key pair, derived once (see [`NodeKey::x25519_secret`]).
    x25519_secret: Zeroizing<[u8; 32]>,
    x25519_public: [u8; 32],
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the public half is ever printed.
        f.debug_struct("NodeKey")
            .field("public", &hex::encode(self.public()))
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    pub fn generate() -> NodeKey {
        NodeKey::with_key(SigningKey::generate(&mut OsRng))
    }

    /// The key for a 32-byte ed25519 seed (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        let seed = Zeroizing::new(seed);
        NodeKey::with_key(SigningKey::from_bytes(&seed))
    }

    fn with_key(key: SigningKey) -> NodeKey {
        // SHA-512(seed)[..32], clamped: the ed25519 secret scalar before reduction, which
        // the TS reference uses as its Noise static key. Its public half is the Montgomery
        // form of the ed25519 public key.
        let h = Zeroizing::new(Sha512::digest(key.to_bytes()));
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&h[..32]);
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let x25519_public = key.verifying_key().to_montgomery().to_bytes();
        NodeKey(std::sync::Arc::new(Keys {
            key,
            x25519_secret: secret,
            x25519_public,
        }))
    }

    pub fn seed(&self) -> [u8; 32] {
        self.0.key.to_bytes()
    }

    pub fn public(&self) -> [u8; 32] {
        self.0.key.verifying_key().to_bytes()
    }

    /// The RFC 8032 signature of `msg` (deterministic: the same bytes from either
    /// backend). With `native-crypto`, AWS-LC's assembly signs (already linked for
    /// X25519): 8.6 µs a signature against curve25519-dalek's 20.1 on the AMD EPYC of
    /// docs/BENCHMARKS.md, and every handshake signs its transcript once per side.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        #[cfg(feature = "native-crypto")]
        {
            // BoringSSL's private-key form: the seed, then the public key.
            let mut key = Zeroizing::new([0u8; 64]);
            key[..32].copy_from_slice(self.0.key.as_bytes());
            key[32..].copy_from_slice(self.0.key.verifying_key().as_bytes());
            let mut sig = [0u8; 64];
            // SAFETY: `sig` has 64 writable bytes, `msg` is `msg.len()` readable bytes,
            // `key` is 64 readable bytes; AWS-LC reads and writes nothing else.
            let ok = unsafe {
                aws_lc_sys::ED25519_sign(sig.as_mut_ptr(), msg.as_ptr(), msg.len(), key.as_ptr())
            };
            if ok == 1 {
                return sig;
            }
        }
        self.0.key.sign(msg).to_bytes()
    }

    /// The X25519 secret the TS reference uses as its Noise static key:
    /// SHA-512(seed)[..32], clamped (the ed25519 secret scalar, before reduction).
    pub fn x25519_secret(&self) -> [u8; 32] {
        *self.0.x25519_secret
    }

    /// The X25519 public key of [`Self::x25519_secret`]; equal to the Montgomery form of
    /// [`Self::public`].
    pub fn x25519_public(&self) -> [u8; 32] {
        self.0.x25519_public
    }
}

/// The Montgomery (X25519) form of an ed25519 public key.
///
/// `None` if the bytes are not a canonical encoding of a curve point, or the point has
/// small order (its X25519 form would give a predictable shared secret).
pub fn ed25519_to_x25519_public(pk: &[u8; 32]) -> Option<[u8; 32]> {
    NodePublicKey::new(pk).map(|k| k.x25519)
}

/// True when `pk`'s y-coordinate is encoded canonically (y < p = 2^255 − 19). For a point
/// that decompresses and has not small order this is exactly `compress(decompress(pk)) ==
/// pk`: decompression reduces y mod p, and the one other way to re-encode differently, x = 0
/// with the sign bit set, means y = ±1, a small-order point (test `canonical_y_is_recompression`).
/// A byte comparison instead of that re-compression saves a field inversion (see
/// [`NodePublicKey`]).
fn canonical_y(pk: &[u8; 32]) -> bool {
    // y >= p only for y in [2^255 − 19, 2^255 − 1]: bytes 1..=30 all 0xff, byte 31's low
    // seven bits all set, byte 0 >= 0xed.
    !(pk[0] >= 0xed && pk[1..31].iter().all(|&b| b == 0xff) && pk[31] & 0x7f == 0x7f)
}

/// A remote node's public key in the forms a handshake needs, worked out once per key
/// (the attestation cache keeps it with the attestation): decompressed for ed25519
/// verification, and its X25519 form, the Noise static key it must match.
///
/// One decompression (a field exponentiation) and one conversion to the Montgomery form (an
/// inversion, another exponentiation). Why it matters: a first contact decodes the peer's
/// key on each side, and it used to cost seven exponentiations (decompress, re-compress and
/// convert in the attestation's validity check, all three again plus a second decompression
/// here), against five for the rest of the handshake's ed25519 work (transcript signature
/// and its check); `perf` of `snap2p-bench connect --only snap2p-cold` put 12.6 % of the
/// listener's CPU in those exponentiations (curve25519-dalek's `FieldElement51::pow2k`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePublicKey {
    bytes: [u8; 32],
    verifying: VerifyingKey,
    x25519: [u8; 32],
}

impl NodePublicKey {
    /// `None` if the bytes are not a canonical encoding of a curve point, or the point has
    /// small order.
    pub fn new(pk: &[u8; 32]) -> Option<NodePublicKey> {
        if !canonical_y(pk) {
            return None;
        }
        let verifying = VerifyingKey::from_bytes(pk).ok()?;
        let point = verifying.to_edwards();
        if point.is_small_order() {
            return None;
        }
        Some(NodePublicKey {
            bytes: *pk,
            verifying,
            x25519: point.to_montgomery().to_bytes(),
        })
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The X25519 form (see [`ed25519_to_x25519_public`]).
    pub fn x25519(&self) -> &[u8; 32] {
        &self.x25519
    }

    /// Strict ed25519 verification, as [`verify_ed25519`].
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.verifying.verify_strict(msg, &sig).is_ok()
    }
}

/// Strict ed25519 verification (rejects small-order keys and non-canonical signatures).
pub fn verify_ed25519(pk: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(pk) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(sig) else {
        return false;
    };
    vk.verify_strict(msg, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    #[test]
    fn x25519_forms_agree() {
        for _ in 0..8 {
            let k = NodeKey::generate();
            assert_eq!(
                ed25519_to_x25519_public(&k.public()),
                Some(k.x25519_public())
            );
            let again = NodeKey::from_seed(k.seed());
            assert_eq!(again.public(), k.public());
            // The cached public half is the one of the secret (derived independently).
            let secret = x25519_dalek::StaticSecret::from(k.x25519_secret());
            assert_eq!(
                x25519_dalek::PublicKey::from(&secret).to_bytes(),
                k.x25519_public()
            );
            let remote = NodePublicKey::new(&k.public()).unwrap();
            assert_eq!(remote.x25519(), &k.x25519_public());
            assert!(remote.verify(b"m", &k.sign(b"m")));
            assert!(!remote.verify(b"n", &k.sign(b"m")));
        }
    }

    /// Signatures are RFC 8032's whichever backend makes them: the same bytes as
    /// curve25519-dalek's, for messages of every length class, and RFC 8032's test 1.
    #[test]
    fn signatures_are_the_same_bytes_as_dalek() {
        let mut msg = Vec::new();
        for i in 0..300usize {
            let k = NodeKey::from_seed([(i % 251) as u8; 32]);
            assert_eq!(
                k.sign(&msg),
                k.0.key.sign(&msg).to_bytes(),
                "message of {} bytes",
                msg.len()
            );
            msg.extend(std::iter::repeat_n(i as u8, i));
        }
        // RFC 8032 §7.1, TEST 1 (empty message).
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let k = NodeKey::from_seed(seed.try_into().unwrap());
        assert_eq!(
            hex::encode(k.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn sign_verify_and_rejects() {
        let k = NodeKey::from_seed([9; 32]);
        let sig = k.sign(b"hello");
        assert!(verify_ed25519(&k.public(), b"hello", &sig));
        assert!(!verify_ed25519(&k.public(), b"hellO", &sig));
        assert!(!verify_ed25519(&k.public(), b"hello", &sig[..63]));
        assert!(!verify_ed25519(&[0; 32], b"hello", &sig));
        // Identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(ed25519_to_x25519_public(&identity), None);
        assert!(!format!("{k:?}").contains(&hex::encode(k.seed())));
    }

    /// The old definition, by re-compression (three exponentiations).
    fn x25519_by_recompression(pk: &[u8; 32]) -> Option<[u8; 32]> {
        let point = CompressedEdwardsY(*pk).decompress()?;
        if point.is_small_order() || point.compress().to_bytes() != *pk {
            return None;
        }
        Some(point.to_montgomery().to_bytes())
    }

    #[test]
    fn canonical_y_is_recompression() {
        use rand::RngCore;
        // Every y >= p (2^255 − 19 ..= 2^255 − 1) with either sign bit, their reductions
        // y − p (0 ..= 18), the values just below p, and the small-order encodings.
        let mut cases: Vec<[u8; 32]> = Vec::new();
        for low in 0xe0u8..=0xff {
            for sign in [0u8, 0x80] {
                let mut y = [0xffu8; 32];
                y[0] = low;
                y[31] = 0x7f | sign;
                cases.push(y);
            }
        }
        for v in 0u8..=20 {
            for sign in [0u8, 0x80] {
                let mut y = [0u8; 32];
                y[0] = v;
                y[31] = sign;
                cases.push(y);
            }
        }
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        cases.push(minus_one);
        let mut rng = rand::rngs::OsRng;
        for _ in 0..4000 {
            let mut y = [0u8; 32];
            rng.fill_bytes(&mut y);
            cases.push(y);
        }
        for _ in 0..64 {
            cases.push(NodeKey::generate().public());
        }
        let mut valid = 0;
        for pk in &cases {
            let want = x25519_by_recompression(pk);
            assert_eq!(ed25519_to_x25519_public(pk), want, "{}", hex::encode(pk));
            assert_eq!(NodePublicKey::new(pk).map(|k| k.x25519), want);
            valid += usize::from(want.is_some());
        }
        // About half of random strings are points: both outcomes were exercised.
        assert!(valid > 1000 && valid < cases.len() - 1000, "{valid}");
        // A non-canonical y that decompresses (y = p + 1, the point y = 1 + ... reduced):
        // refused even though its reduction is a valid encoding.
        let mut p_plus = [0xffu8; 32];
        p_plus[31] = 0x7f;
        for low in 0xedu8..=0xff {
            p_plus[0] = low;
            assert_eq!(NodePublicKey::new(&p_plus), None, "{low:#x}");
        }
    }
}
