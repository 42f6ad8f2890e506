//! A tonic codec over bytes: requests go out already encoded (see
//! [`super::Bodies`]), and replies are counted, not decoded. fdsoak watches
//! descriptors and latency; it does not need the reply's fields, and not
//! decoding keeps a dynamic call about as cheap as a generated one.

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Sends pre-encoded bytes; each reply decodes to `()`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Raw;

pub(crate) struct RawEncoder;
pub(crate) struct RawDecoder;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
