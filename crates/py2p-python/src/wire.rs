//! The wire format for `py2p_rs.base`: base-58, compression, protocol ids and messages
//! (py2p's `InternalMessage`), all from `py2p-wire`.

use py2p_wire::{base58, Compression, Limits, Protocol};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::error;
use crate::packets;

/// Registers this module's functions on the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(b58_encode, m)?)?;
    m.add_function(wrap_pyfunction!(b58_decode, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    m.add_function(wrap_pyfunction!(compression_flags, m)?)?;
    m.add_function(wrap_pyfunction!(protocol_id, m)?)?;
    m.add_function(wrap_pyfunction!(message_id, m)?)?;
    m.add_function(wrap_pyfunction!(encode_message, m)?)?;
    m.add_function(wrap_pyfunction!(decode_message, m)?)?;
    Ok(())
}

/// The compression a one-byte flag names (`flags.zlib`, ...), or `ValueError`.
pub(crate) fn method(flag: &[u8]) -> PyResult<Compression> {
    match flag {
        [b] => Compression::from_flag(*b),
        _ => None,
    }
    .ok_or_else(|| PyValueError::new_err("Unknown compression method"))
}

/// Base-58 text of the big-endian unsigned integer `be_bytes` (py2p's `to_base_58`).
#[pyfunction]
fn b58_encode<'py>(py: Python<'py>, be_bytes: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, base58::encode_be_bytes(be_bytes).as_bytes())
}

/// The big-endian bytes of the integer a base-58 text stands for (py2p's `from_base_58`);
/// `ValueError` on a character outside the alphabet.
#[pyfunction]
fn b58_decode<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = base58::decode_be_bytes_raw(text).map_err(error::wire)?;
    Ok(PyBytes::new(py, &bytes))
}

/// `data` compressed with the method whose flag is `method`.
#[pyfunction]
fn compress<'py>(py: Python<'py>, data: &[u8], method: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let m = self::method(method)?;
    let out = py.detach(|| m.compress(data));
    Ok(PyBytes::new(py, &out))
}

/// `data` decompressed with the method whose flag is `method`, at most
/// `Limits::DEFAULT_MAX_DECOMPRESSED_LEN` bytes of output.
#[pyfunction]
fn decompress<'py>(py: Python<'py>, data: &[u8], method: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let m = self::method(method)?;
    let out = py
        .detach(|| m.decompress(data, Limits::DEFAULT_MAX_DECOMPRESSED_LEN))
        .map_err(error::wire)?;
    Ok(PyBytes::new(py, &out))
}

/// The flags of the compressions this build implements, in py2p's order of preference.
#[pyfunction]
fn compression_flags<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        Compression::PREFERENCE
            .iter()
            .map(|c| PyBytes::new(py, &[c.flag()])),
    )
}

/// The protocol id of `(subnet, encryption)`.
#[pyfunction]
fn protocol_id<'py>(
    py: Python<'py>,
    subnet: &str,
    encryption: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let protocol = Protocol::parse(subnet, encryption)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, protocol.id().as_bytes()))
}

fn message(
    msg_type: &Bound<'_, PyAny>,
    sender: &Bound<'_, PyAny>,
    payload: &Bound<'_, PyAny>,
    time: u64,
) -> PyResult<py2p_wire::Message> {
    Ok(py2p_wire::Message::new(
        packets::packet(msg_type)?,
        packets::packet(sender)?,
        packets::packets(payload)?,
        time,
    ))
}

/// The id of a message of these payload packets sent at `time`.
#[pyfunction]
fn message_id<'py>(
    py: Python<'py>,
    payload: &Bound<'py, PyAny>,
    time: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let msg = py2p_wire::Message::new(Vec::new(), Vec::new(), packets::packets(payload)?, time);
    Ok(PyBytes::new(py, msg.id().as_bytes()))
}

/// The whole frame of a message, compressed with `compression` (a flag) if given.
#[pyfunction]
#[pyo3(signature = (msg_type, sender, payload, time, compression=None))]
fn encode_message<'py>(
    py: Python<'py>,
    msg_type: &Bound<'py, PyAny>,
    sender: &Bound<'py, PyAny>,
    payload: &Bound<'py, PyAny>,
    time: u64,
    compression: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let msg = message(msg_type, sender, payload, time)?;
    let method = compression.map(self::method).transpose()?;
    let frame = py.detach(|| msg.encode(method));
    Ok(PyBytes::new(py, &frame))
}

/// Parses a frame (or, with `sizeless`, a frame body) whose body may be compressed with any
/// of `compressions` (flags); returns `(msg_type, sender, payload, time)`. `ValueError` when
/// the size header, a packet header or the checksum is wrong.
#[pyfunction]
fn decode_message<'py>(
    py: Python<'py>,
    string: &[u8],
    sizeless: bool,
    compressions: Vec<Vec<u8>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let methods: Vec<Compression> = compressions
        .iter()
        .filter_map(|f| self::method(f).ok())
        .collect();
    let limits = Limits::default();
    let msg = py
        .detach(|| {
            if sizeless {
                py2p_wire::Message::decode_body(string, &methods, &limits)
            } else {
                py2p_wire::Message::decode_frame(string, &methods, &limits)
            }
        })
        .map_err(error::wire)?;
    (
        PyBytes::new(py, msg.msg_type()),
        PyBytes::new(py, msg.sender()),
        packets::to_tuple(py, msg.payload())?,
        msg.time(),
    )
        .into_pyobject(py)
}
