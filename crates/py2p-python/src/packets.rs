//! Python values as packets: py2p's `sanitize_packet`.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString, PyTuple};

/// The bytes py2p would send for `obj`: `bytes` and `bytearray` as they are, `str` as UTF-8,
/// anything else through `obj.encode('raw_unicode_escape')` (which raises for an `int`, as
/// in py2p).
pub(crate) fn packet(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    let encoded = obj.call_method1("encode", ("raw_unicode_escape",))?;
    Ok(encoded.cast::<PyBytes>()?.as_bytes().to_vec())
}

/// Every item of an iterable as a packet.
pub(crate) fn packets(items: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    items.try_iter()?.map(|item| packet(&item?)).collect()
}

/// Packets as a tuple of `bytes`, as py2p hands them to users.
pub(crate) fn to_tuple<'py>(
    py: Python<'py>,
    packets: py2p_wire::Payload<'_>,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, packets.iter().map(|p| PyBytes::new(py, p)))
}
