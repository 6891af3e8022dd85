//! `Bytes`: stream data crossing the FFI.
//!
//! Same wire form as uniffi's `Vec<u8>` (an i32 length, then the bytes) and the same
//! foreign type (`ByteArray` in Kotlin, `Data` in Swift), so the generated bindings do not
//! change; but no copy in and one `memcpy` out instead of uniffi_core's per-element loop for
//! `Vec<T>` (uniffi-rs#1586), which cost ~4 ns a byte: 58 % of the CPU of a Kotlin sender
//! writing 64 KiB chunks (perf, docs/BENCHMARKS.md).

use bytes::{Buf, BufMut};
use uniffi::{FfiConverter, MetadataBuffer, RustBuffer, TypeId};

/// Binary data passed to or returned from stream calls (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub bytes::Bytes);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v.into())
    }
}

impl From<bytes::Bytes> for Bytes {
    fn from(v: bytes::Bytes) -> Self {
        Bytes(v)
    }
}

// SAFETY: reads and writes exactly the layout of uniffi's own `Vec<u8>` converter (i32
// big-endian length, then the bytes), and declares the same type metadata, so foreign code
// generated for `Vec<u8>` reads and writes it unchanged. Lengths are checked before use.
unsafe impl FfiConverter<crate::UniFfiTag> for Bytes {
    type FfiType = RustBuffer;

    fn lower(obj: Self) -> RustBuffer {
        let mut buf = Vec::with_capacity(4 + obj.0.len());
        <Self as FfiConverter<crate::UniFfiTag>>::write(obj, &mut buf);
        RustBuffer::from_vec(buf)
    }

    fn try_lift(v: RustBuffer) -> uniffi::Result<Self> {
        // The buffer is ours: keep it and skip the length prefix (no copy at all).
        let vec = v.destroy_into_vec();
        let mut buf = vec.as_slice();
        uniffi::check_remaining(buf, 4)?;
        let len = usize::try_from(buf.get_i32())?;
        if buf.len() != len {
            uniffi::deps::anyhow::bail!("bytes: length {len} but {} bytes follow", buf.len());
        }
        Ok(Bytes(bytes::Bytes::from(vec).slice(4..)))
    }

    fn write(obj: Self, buf: &mut Vec<u8>) {
        // uniffi limits sequences to i32::MAX items; stream calls cap chunks far below.
        let len = i32::try_from(obj.0.len()).expect("bytes longer than i32::MAX");
        buf.put_i32(len);
        buf.extend_from_slice(&obj.0);
    }

    fn try_read(buf: &mut &[u8]) -> uniffi::Result<Self> {
        uniffi::check_remaining(buf, 4)?;
        let len = usize::try_from(buf.get_i32())?;
        uniffi::check_remaining(buf, len)?;
        let out = bytes::Bytes::copy_from_slice(&buf[..len]);
        buf.advance(len);
        Ok(Bytes(out))
    }

    const TYPE_ID_META: MetadataBuffer = <Vec<u8> as TypeId<crate::UniFfiTag>>::TYPE_ID_META;
}

uniffi::derive_ffi_traits!(local Bytes);

#[cfg(test)]
mod tests {
    use super::*;
    use uniffi::{Lift, Lower};

    type Tag = crate::UniFfiTag;

    #[test]
    fn same_bytes_as_uniffi_vec_u8() {
        for data in [vec![], vec![7u8], (0..70_000u32).map(|i| i as u8).collect()] {
            let mut ours = Vec::new();
            <Bytes as Lower<Tag>>::write(Bytes::from(data.clone()), &mut ours);
            let mut theirs = Vec::new();
            <Vec<u8> as Lower<Tag>>::write(data.clone(), &mut theirs);
            assert_eq!(ours, theirs);
            let lifted = <Bytes as Lift<Tag>>::try_lift(RustBuffer::from_vec(theirs)).unwrap();
            assert_eq!(lifted.0, data);
            let back = <Vec<u8> as Lift<Tag>>::try_lift(<Bytes as Lower<Tag>>::lower(Bytes::from(
                data.clone(),
            )));
            assert_eq!(back.unwrap(), data);
        }
        assert_eq!(
            <Bytes as TypeId<Tag>>::TYPE_ID_META.as_ref(),
            <Vec<u8> as TypeId<Tag>>::TYPE_ID_META.as_ref()
        );
    }

    #[test]
    fn short_or_negative_lengths_are_errors() {
        let mut buf: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(<Bytes as Lift<Tag>>::try_read(&mut buf).is_err());
        let mut buf: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(<Bytes as Lift<Tag>>::try_read(&mut buf).is_err());
        let mut buf: &[u8] = &[0, 0];
        assert!(<Bytes as Lift<Tag>>::try_read(&mut buf).is_err());
        for bad in [vec![0, 0, 0, 3, 1, 2], vec![0, 0, 0, 1, 1, 2], vec![0, 0]] {
            assert!(<Bytes as Lift<Tag>>::try_lift(RustBuffer::from_vec(bad)).is_err());
        }
    }
}
