"""The field checks of :mod:`edge_sites.schema`: private to the package (schema.py holds the kinds).

A check takes ``(errors, value, field path)`` and returns the normalized value, or
``_INVALID`` after recording why in ``errors``; checks compose (a list of addresses, a
mapping of fields), so every kind's table in schema.py is built from these.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final


class SchemaError(ValueError):
    """Every problem found in an object, as ``(field path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in errors))


# A check returns the normalized value, or _INVALID after recording why.
_INVALID: Final = object()
Check = Callable[["_Errors", object, str], Any]


@dataclass(frozen=True, slots=True)
class Field:
    """One spec field: ``default(name)`` gives the value when it is absent (None: optional, no value)."""

    name: str
    check: Check
    required: bool = False
    default: Callable[[str], Any] | None = None


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, path: str, message: str) -> object:
        self.items.append((path, message))
        return _INVALID


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """How a wrong value reads in a message ("string 'x'", "a list", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the choice closest to ``word``, case aside: ``" (did you mean 'x'?)"``, or "" if none is close."""
    by_case = {choice.lower(): choice for choice in choices}  # "Upf" is close to "UPF"
    close = difflib.get_close_matches(word.lower(), list(by_case), n=1)
    return f" (did you mean {by_case[close[0]]!r}?)" if close else ""


# Scalar checks.


def _string(err: _Errors, value: object, path: str, what: str = "a string") -> Any:
    if not isinstance(value, str):
        # YAML reads 8805 as a number and 1:30 as a base-60 one.
        hint = " (quote it in YAML to keep it a string)" if isinstance(value, int | float) else ""
        return err(path, f"expected {what}, got {describe(value)}{hint}")
    return value


def _pattern(regex: str, what: str, example: str, max_len: int = 128) -> Check:
    compiled = re.compile(regex)

    def check(err: _Errors, value: object, path: str) -> Any:
        text = _string(err, value, path, what)
        if text is _INVALID:
            return text
        if len(text) > max_len or not compiled.fullmatch(text):
            return err(path, f"{text!r} is not {what}: expected {example}")
        return text

    return check


# TS 23.003 §2.2A: an IMSI (at most 15 digits) or an NAI; TS 29.571 §5.3.2 writes them "imsi-"/"nai-".
_supi = _pattern(r"imsi-[0-9]{5,15}|nai-[!-~]+", "a SUPI", "'imsi-' and 5 to 15 digits, or 'nai-...'")
# TS 23.003 §19.4.2.3: TAI = MCC + MNC + TAC, written "MCC-MNC-TAC" with the 24-bit 5GS TAC as 6 digits.
_tai = _pattern(r"[0-9]{3}-[0-9]{2,3}-[0-9]{6}", "a TAI", "'MCC-MNC-TAC' digits, e.g. '001-01-000001'")
# TS 23.003 §9.1: labels of letters, digits and hyphens separated by dots, at most 100 octets.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_dnn = _pattern(
    rf"{_LABEL}(?:\.{_LABEL})*", "a DNN", "dot-separated labels of letters, digits and '-', e.g. 'internet'", 100
)
#: A name of something provisioned: 1..128 printable ASCII, no spaces at either end.
_name = _pattern(r"[!-~](?:[ -~]{0,126}[!-~])?", "a name", "1 to 128 printable ASCII characters")
# A PFCP Network Instance (TS 29.244 §8.2.4) is an octet string; ours are printable names without spaces.
_network_instance = _pattern(r"[!-~]{1,100}", "a network instance", "1 to 100 printable ASCII characters, no spaces")
_SNSSAI = re.compile(r"(?P<sst>[0-9]{1,3})(?:-(?P<sd>[0-9A-Fa-f]{6}))?")


def canonical_snssai(text: str) -> str:
    """The one spelling of an S-NSSAI ("SST" or "SST-sd": no leading zeros, SD in lower case),
    so that equal slices compare equal as text; ValueError saying what is wrong otherwise."""
    match = _SNSSAI.fullmatch(text)
    if match is None or int(match["sst"]) > 255:
        raise ValueError(f"{text!r} is not an S-NSSAI: expected 'SST' (0..255) or 'SST-SD' (SD 6 hex digits)")
    sd = match["sd"]
    if sd is not None and sd.lower() == "ffffff":
        # TS 23.003 §28.4.2: SD FFFFFF is reserved to mean "no SD".
        raise ValueError(f"{text!r}: SD FFFFFF means no SD; write the SST alone")
    sst = str(int(match["sst"]))
    return sst if sd is None else f"{sst}-{sd.lower()}"


def _snssai(err: _Errors, value: object, path: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # YAML reads a bare SST as a number
    text = _string(err, value, path, "an S-NSSAI")
    if text is _INVALID:
        return text
    try:
        return canonical_snssai(text)
    except ValueError as exc:
        return err(path, str(exc))


def _snssai_or_any(err: _Errors, value: object, path: str) -> Any:
    return "*" if value == "*" else _snssai(err, value, path)


def _fqdn(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    # RFC 1123 §2.1: a name whose last label is all digits would read as a dotted-decimal address.
    return (
        0 < len(name) <= 253
        and all(len(label) <= 63 and re.fullmatch(_LABEL, label) for label in labels)
        and not labels[-1].isdigit()
    )


def _node_id(err: _Errors, value: object, path: str) -> Any:
    # TS 29.244 §8.2.38: a Node ID is an IPv4 address, an IPv6 address or an FQDN.
    text = _string(err, value, path, "a Node ID")
    if text is _INVALID:
        return text
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _fqdn(text):
            return err(path, f"{text!r} is not a Node ID: expected an IP address or an FQDN")
    return text


def _integer(low: int, high: int) -> Check:
    def check(err: _Errors, value: object, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return err(path, f"expected an integer, got {describe(value)}")
        if not low <= value <= high:
            return err(path, f"{value} is out of range (expected {low}..{high})")
        return value

    return check


_INT32: Final = 2**31 - 1  # database INTEGER


def _boolean(err: _Errors, value: object, path: str) -> Any:
    if not isinstance(value, bool):
        return err(path, f"expected true or false, got {describe(value)}")
    return value


def _choice(*choices: str) -> Check:
    def check(err: _Errors, value: object, path: str) -> Any:
        text = _string(err, value, path, f"one of {', '.join(choices)}")
        if text is _INVALID:
            return text
        if text.lower() not in choices:
            return err(path, f"{text!r} is not one of {', '.join(choices)}{did_you_mean(text.lower(), choices)}")
        return text.lower()

    return check


def _address(version: int | None = None) -> Check:
    what = {None: "an IP address", 4: "an IPv4 address", 6: "an IPv6 address"}[version]

    def check(err: _Errors, value: object, path: str) -> Any:
        text = _string(err, value, path, what)
        if text is _INVALID:
            return text
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            hint = " (a single address, not a prefix)" if "/" in text else ""
            return err(path, f"{text!r} is not {what}{hint}")
        if version is not None and addr.version != version:
            return err(path, f"{text!r} is not {what}")
        if addr.is_unspecified or addr.is_multicast:
            return err(path, f"{text!r} is {'unspecified' if addr.is_unspecified else 'multicast'}: expected unicast")
        return str(addr)

    return check


def _network(version: int | None = None) -> Check:
    what = {None: "an IP prefix", 4: "an IPv4 prefix", 6: "an IPv6 prefix"}[version]

    def check(err: _Errors, value: object, path: str) -> Any:
        text = _string(err, value, path, f"{what} such as 10.0.0.0/24")
        if text is _INVALID:
            return text
        try:
            if "/" not in text:  # ip_network() would read an address as a /32 or /128
                bits = 32 if ipaddress.ip_address(text).version == 4 else 128
                return err(path, f"{text!r} is an address, not {what}: write its length too, e.g. {text}/{bits}")
            net = ipaddress.ip_network(text)
        except ValueError:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                return err(path, f"{text!r} is not {what}")
            return err(path, f"{text!r} has host bits set (did you mean {str(loose)!r}?)")
        if version is not None and net.version != version:
            return err(path, f"{text!r} is not {what}")
        if net.is_multicast or net.is_loopback or net.is_link_local or net.is_unspecified:
            return err(path, f"{text!r} is a multicast, loopback, link-local or unspecified range")
        return str(net)

    return check


def _list(item: Check, *, ordered: bool = False, min_items: int = 0) -> Check:
    """A list of ``item``; sorted without duplicates unless ``ordered`` (then duplicates are errors)."""

    def check(err: _Errors, value: object, path: str) -> Any:
        if not isinstance(value, list | tuple):
            return err(path, f"expected a list, got {describe(value)}")
        if len(value) < min_items:
            return err(path, f"expected at least {min_items} item{'s' if min_items > 1 else ''}, got {len(value)}")
        out: list[Any] = []
        ok = True
        for index, raw in enumerate(value):
            got = item(err, raw, f"{path}[{index}]")
            if got is _INVALID:
                ok = False
            elif ordered and got in out:
                err(f"{path}[{index}]", f"{raw!r} repeats {path}[{out.index(got)}]")
                ok = False
            else:
                out.append(got)
        if not ok:
            return _INVALID
        return out if ordered else sorted(set(out))

    return check


# IPFilterRule (RFC 6733 §4.3.1) in the dialect TS 29.212 §5.4.2 allows, as the user plane parses it.
_PORT_PROTOCOLS: Final = frozenset({6, 17, 33, 132, 136})  # TCP, UDP, DCCP, SCTP, UDP-Lite
_PORTS = re.compile(r"[0-9]{1,5}(?:-[0-9]{1,5})?(?:,[0-9]{1,5}(?:-[0-9]{1,5})?)*")


def _flow_description(err: _Errors, value: object, path: str) -> Any:
    text = _string(err, value, path, "an IPFilterRule")
    if text is _INVALID:
        return text
    words = text.split()
    expect = "'permit out|in ip|<protocol> from <address> [ports] to <address> [ports]'"
    if len(words) < 7 or words[0] != "permit" or words[1] not in ("in", "out") or words[3] != "from":
        hint = " (TS 29.212 §5.4.2: only 'permit')" if words[:1] == ["deny"] else ""
        return err(path, f"{text!r} is not an IPFilterRule: expected {expect}{hint}")
    proto = words[2]
    if proto != "ip" and not (proto.isdecimal() and int(proto) <= 255):
        return err(path, f"{text!r}: protocol {proto!r} must be 'ip' or a number 0..255")
    rest = words[4:]
    for side in ("from", "to"):
        if not rest:
            return err(path, f"{text!r}: missing the {side!r} address")
        address, rest = rest[0], rest[1:]
        if address not in ("any", "assigned"):
            try:
                ipaddress.ip_network(address, strict=False)  # RFC 6733 lets host bits be set
            except ValueError:
                return err(path, f"{text!r}: {address!r} is not an address, a prefix, 'any' or 'assigned'")
        if rest and rest[0][:1].isdecimal():
            ports, rest = rest[0], rest[1:]
            if proto == "ip" or int(proto) not in _PORT_PROTOCOLS:
                return err(path, f"{text!r}: ports need TCP (6), UDP (17), DCCP (33), SCTP (132) or UDP-Lite (136)")
            ranges = [[int(p) for p in item.split("-")] for item in ports.split(",")] if _PORTS.fullmatch(ports) else []
            if not ranges or any(r[-1] > 65535 or r[0] > r[-1] for r in ranges):
                return err(path, f"{text!r}: {ports!r} is not a list of ports 0..65535 and low-high ranges")
        if side == "from":
            if not rest or rest[0] != "to":
                return err(path, f"{text!r} is not an IPFilterRule: expected {expect}")
            rest = rest[1:]
    if rest:
        return err(path, f"{text!r}: unexpected {' '.join(rest)!r} (TS 29.212 §5.4.2: no options)")
    return " ".join(words)


# The kinds' fields.


def _const(value: Any) -> Callable[[str], Any]:
    return lambda _name: value


def _empty(_name: str) -> list[Any]:
    return []


def _mapping(err: _Errors, value: object, path: str, fields: tuple[Field, ...], key: str) -> dict[str, Any] | None:
    """The fields of one mapping, checked, defaulted and in table order; None if anything is wrong."""
    if not isinstance(value, Mapping):
        err(path, f"expected a mapping, got {describe(value)}")
        return None
    before = len(err.items)
    names = tuple(f.name for f in fields)
    for unknown in value:
        if unknown not in names:
            err(
                _child(path, str(unknown)),
                f"unknown field{did_you_mean(str(unknown), names)}; expected one of {', '.join(names)}",
            )
    out: dict[str, Any] = {}
    for f in fields:
        raw = value.get(f.name)
        if raw is None:  # absent, or written as null
            if f.required:
                err(_child(path, f.name), "required")
            out[f.name] = f.default(key) if f.default is not None else None
        else:
            out[f.name] = f.check(err, raw, _child(path, f.name))
    return None if len(err.items) > before else out


_EDGE_RULE: Final = (
    Field("name", _name, required=True),
    # Below the default rules' precedence (65535), so edge traffic is matched first.
    Field("precedence", _integer(0, 65534), required=True),
    Field("flow_descriptions", _list(_flow_description, ordered=True, min_items=1), required=True),
    Field("network_instance", _network_instance, required=True),
)
