"""Hypothesis: caller IDs survive message, modem and G.711; other input raises CallerIdError."""

from __future__ import annotations

import string

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from appliance.dsp.callerid import (
    Absence,
    CallerId,
    CallerIdError,
    CallTime,
    FskDemodulator,
    FskStandard,
    MessageFormat,
    decode_message,
    dtmf_cid_decode,
    dtmf_cid_encode,
    encode_message,
    fsk_demodulate,
    fsk_modulate,
)
from appliance.dsp.g711 import decode_ulaw, encode_ulaw

# A burst takes 1-3 ms to send and receive, so the profile's example count stands;
# only feeding samples in many tiny chunks is slow enough to cap.
MODEM = settings(deadline=None)
CHUNKED = settings(max_examples=40, deadline=None)
# 0 dBm0 (a sine of peak 22657) is 3.17 dB below a full-scale sine (peak 32767).
DBM0_PER_DBFS = 20 * np.log10(32767 / (8159 * 4 * 10 ** (-3.17 / 20)))

numbers = st.text(string.digits, min_size=1, max_size=20)
names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=15)
times = st.builds(
    CallTime,
    month=st.integers(1, 12),
    day=st.integers(1, 31),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
absences = st.sampled_from(Absence)


@st.composite
def callers(draw: st.DrawFn, *, sdmf: bool = False) -> CallerId:
    """Any caller ID the format can carry; SDMF has no name and always a date."""
    number, number_absence = draw(
        st.one_of(
            st.tuples(numbers, st.none()),
            st.tuples(st.none(), absences),
            st.tuples(st.none(), st.none()),
        )
    )
    when = draw(times) if sdmf else draw(st.none() | times)
    if sdmf:
        return CallerId(number=number, when=when, number_absence=number_absence)
    name, name_absence = draw(
        st.one_of(
            st.tuples(names, st.none()),
            st.tuples(st.none(), absences),
            st.tuples(st.none(), st.none()),
        )
    )
    return CallerId(number, name, when, number_absence, name_absence)


@st.composite
def messages(draw: st.DrawFn) -> tuple[CallerId, MessageFormat]:
    fmt = draw(st.sampled_from(MessageFormat))
    return draw(callers(sdmf=fmt is MessageFormat.SDMF)), fmt


def parses_or_error(data: bytes) -> None:
    try:
        decode_message(data)
    except CallerIdError:
        return


@given(messages())
def test_messages_round_trip(message: tuple[CallerId, MessageFormat]) -> None:
    caller, fmt = message
    data = encode_message(caller, fmt)
    assert sum(data) % 256 == 0
    assert decode_message(data) == caller


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_caller_id_error(data: bytes) -> None:
    parses_or_error(data)


@given(messages(), st.data())
def test_damaged_messages_decode_or_raise_caller_id_error(
    message: tuple[CallerId, MessageFormat], data: st.DataObject
) -> None:
    raw = bytearray(encode_message(*message))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    parses_or_error(bytes(raw))
    parses_or_error(bytes(raw[:cut]))


@MODEM
@given(messages(), st.sampled_from(FskStandard))
def test_caller_id_survives_the_modem(
    message: tuple[CallerId, MessageFormat], standard: FskStandard
) -> None:
    caller, fmt = message
    samples = fsk_modulate(encode_message(caller, fmt), standard)
    assert decode_message(fsk_demodulate(samples, standard)) == caller


@MODEM
@given(
    messages(),
    st.sampled_from(FskStandard),
    st.floats(-30.0, -6.0),
    st.integers(0, 2**32 - 1),
    st.integers(0, 400),
)
def test_caller_id_survives_noise_level_and_mu_law(
    message: tuple[CallerId, MessageFormat],
    standard: FskStandard,
    level_dbfs: float,
    seed: int,
    lead: int,
) -> None:
    caller, fmt = message
    clean = fsk_modulate(
        encode_message(caller, fmt), standard, level_dbm0=level_dbfs + DBM0_PER_DBFS
    ).astype(np.float64)
    rng = np.random.default_rng(seed)
    noise_rms = np.sqrt(np.mean(clean**2) / 10 ** (20.0 / 10))  # 20 dB SNR
    line = np.concatenate((np.zeros(lead), clean, np.zeros(200)))
    line += rng.normal(0.0, noise_rms, line.size)
    pcm = np.clip(np.rint(line), -32768, 32767).astype(np.int16)
    received = decode_ulaw(encode_ulaw(pcm))
    assert decode_message(fsk_demodulate(received, standard)) == caller


@CHUNKED
@given(messages(), st.sampled_from(FskStandard), st.lists(st.integers(1, 500), min_size=1))
def test_demodulator_gives_the_same_bytes_fed_whole_or_in_chunks(
    message: tuple[CallerId, MessageFormat], standard: FskStandard, sizes: list[int]
) -> None:
    data = encode_message(*message)
    samples = np.concatenate((fsk_modulate(data, standard), np.zeros(200, dtype=np.int16)))
    demodulator = FskDemodulator(standard)
    bursts: list[bytes] = []
    at = 0
    for size in sizes * (samples.size // sum(sizes) + 1):
        bursts += demodulator.feed(samples[at : at + size])
        at += size
    assert bursts == [data]


pcm = arrays(np.int16, st.integers(0, 6000))


@settings(max_examples=60, deadline=None)
@given(pcm, st.sampled_from(FskStandard))
def test_any_samples_demodulate_to_bytes_that_decode_or_raise(
    samples: npt.NDArray[np.int16], standard: FskStandard
) -> None:
    received = fsk_demodulate(samples, standard)
    assert isinstance(received, bytes)
    parses_or_error(received)


@settings(max_examples=30, deadline=None)
@given(pcm)
def test_any_samples_dtmf_decode_or_raise(samples: npt.NDArray[np.int16]) -> None:
    try:
        dtmf_cid_decode(samples)
    except CallerIdError:
        return


@settings(max_examples=20, deadline=None)
@given(
    st.one_of(st.text(string.digits, min_size=1, max_size=20), absences),
    st.sampled_from("AD"),
)
def test_dtmf_caller_id_round_trips(number: str | Absence, start: str) -> None:
    expected = (
        CallerId(number_absence=number) if isinstance(number, Absence) else CallerId(number=number)
    )
    samples = dtmf_cid_encode(number, start=start)
    assert dtmf_cid_decode(decode_ulaw(encode_ulaw(samples))) == expected
