"""The signing key file, its JWK and thumbprint, and RFC 9421 signatures checked by the
library's own verifier configured only with the published JWK."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, InvalidSignature, MappingKeyResolver, algorithms
from multidict import CIMultiDict

from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys
from clutto_bridge.crypto.signing import (
    SigningKeyError,
    create_signing_key,
    key_id,
    load_public_key,
    load_signing_key,
    public_jwk,
)
from tests.unit.helpers import Message, verifier_from


def test_key_id_is_the_rfc_7638_thumbprint_of_rfc_8037s_example() -> None:
    # RFC 8037 appendix A.1 (the key) and A.3 (its JWK thumbprint).
    d = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    public = Ed25519PrivateKey.from_private_bytes(d).public_key()
    assert public_jwk(public)["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert key_id(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_created_key_is_owner_only_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    key = create_signing_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert key_id(load_signing_key(path).public_key()) == key_id(key.public_key())
    assert key_id(load_public_key(path)) == key_id(key.public_key())
    with pytest.raises(SigningKeyError, match="never overwritten"):
        create_signing_key(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_readable_by_group_or_others_is_refused_naming_the_file(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    create_signing_key(path)
    os.chmod(path, mode)
    with pytest.raises(SigningKeyError) as error:
        load_signing_key(path)
    assert str(path) in str(error.value) and "chmod 600" in str(error.value)


def test_missing_and_wrong_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="does not exist"):
        load_signing_key(tmp_path / "nope.key")
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    os.chmod(junk, 0o600)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM"):
        load_signing_key(junk)


def test_the_key_set_lists_the_current_key_first_and_keeps_earlier_ones() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = SigningKeys(new, [old.public_key(), new.public_key()])
    kids = [k["kid"] for k in keys.jwks()["keys"]]
    assert kids == [key_id(new.public_key()), key_id(old.public_key())]


def test_a_signed_response_verifies_with_the_jwk_and_a_changed_byte_does_not() -> None:
    keys = SigningKeys(Ed25519PrivateKey.generate())
    body = b'{"team": "Acme"}'
    headers = CIMultiDict({"Content-Type": "application/json; charset=utf-8"})
    MessageSigner(keys).sign_response(200, headers, body)
    verifier = verifier_from(keys.jwks()["keys"][0])
    required = ("@status", "content-type", "content-digest")
    [result] = verifier.verify(Message(headers, status_code=200), body=body, require_components=required)
    assert result.parameters["keyid"] == keys.current_id and "created" in result.parameters
    with pytest.raises(InvalidSignature):
        verifier.verify(Message(headers, status_code=201), body=body)
    with pytest.raises(InvalidSignature):
        verifier.verify(Message(headers, status_code=200), body=body.replace(b"A", b"B"))
    with pytest.raises(InvalidSignature):  # another key's JWK
        verifier_from(public_jwk(Ed25519PrivateKey.generate().public_key()) | {"kid": keys.current_id}).verify(
            Message(headers, status_code=200),
            body=body,
        )


def test_a_signed_webhook_request_covers_method_target_and_body() -> None:
    keys = SigningKeys(Ed25519PrivateKey.generate())
    body, url = b'{"type": "audit"}', "https://hooks.example.com/clutto?x=1"
    headers = CIMultiDict({"Content-Type": "application/json"})
    MessageSigner(keys).sign_request("POST", url, headers, body)
    verifier = verifier_from(keys.jwks()["keys"][0])
    required = ("@method", "@target-uri", "content-type", "content-digest")
    verifier.verify(Message(headers, method="POST", url=url), body=body, require_components=required)
    with pytest.raises(InvalidSignature):
        verifier.verify(Message(headers, method="POST", url=url.replace("x=1", "x=2")), body=body)
    with pytest.raises(InvalidSignature):
        verifier.verify(Message(headers, method="POST", url=url), body=body + b" ")


def library_signed(
    keys: SigningKeys, status: int, headers: CIMultiDict, body: bytes | None, created: int
) -> CIMultiDict:
    """The same response signed by http-message-signatures itself (the reference)."""
    from datetime import datetime

    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={keys.current_id: keys.current}),
    )
    headers = CIMultiDict(headers)
    covered = tuple(
        c
        for c in ("@status", "content-type", "content-digest")
        if c.startswith("@") or c in headers or (c == "content-digest" and body is not None)
    )
    signer.sign(
        Message(headers, status_code=status),
        key_id=keys.current_id,
        label="clutto",
        covered_component_ids=covered,
        created=datetime.fromtimestamp(created),
        body=body,
        use_existing_digest=body is None and "content-digest" in covered,
    )
    return headers


RESPONSE_KINDS = {
    "200 json": (200, {"Content-Type": "application/json; charset=utf-8"}, b'{"team": "Acme", "rooms": []}'),
    "404 problem": (404, {"Content-Type": "application/problem+json"}, b'{"title": "Not Found"}'),
    "401 text": (401, {"Content-Type": "text/plain; charset=utf-8"}, b"401: Unauthorized"),
    "empty body": (204, {"Content-Type": "application/octet-stream"}, b""),
    "download 200": (
        200,
        {"Content-Type": "application/zip", "Content-Digest": "sha-256=:RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=:"},
        None,
    ),
    "download 206": (206, {"Content-Type": "application/zip", "Content-Range": "bytes 0-9/100"}, None),
    "download 304": (304, {}, None),
    "spaces around a value": (200, {"Content-Type": " text/html \t"}, b"<p>x</p>"),
    "two field lines": (200, CIMultiDict([("Content-Type", "text/plain"), ("content-type", "charset=utf-8")]), b"x"),
}


@pytest.mark.parametrize("kind", sorted(RESPONSE_KINDS))
def test_the_fast_signer_agrees_byte_for_byte_with_the_library_and_verifies(kind: str) -> None:
    status, fields, body = RESPONSE_KINDS[kind]
    keys, created = SigningKeys(Ed25519PrivateKey.generate()), int(time.time())
    headers = CIMultiDict(fields)
    MessageSigner(keys, now=lambda: created + 0.7).sign_response(status, headers, body)
    reference = library_signed(keys, status, CIMultiDict(fields), body, created)
    for name in ("Content-Digest", "Signature-Input", "Signature"):  # Ed25519 is deterministic
        assert headers.getall(name, None) == reference.getall(name, None), name
    required = ("@status",) + (("content-type",) if "Content-Type" in fields else ())
    verifier_from(keys.jwks()["keys"][0]).verify(
        Message(headers, status_code=status), body=body, require_components=required
    )


@pytest.mark.parametrize("value", ["text/plain\r\n folded", "text/plain; name=caf\u00e9"])
def test_a_value_the_fast_path_cannot_format_goes_to_the_library(value: str) -> None:
    keys = SigningKeys(Ed25519PrivateKey.generate())
    headers, reference_headers = CIMultiDict({"Content-Type": value}), CIMultiDict({"Content-Type": value})
    try:
        reference = library_signed(keys, 200, reference_headers, b"x", 1_790_000_000)
    except Exception as error:  # the library refuses it: so must we, with its error
        with pytest.raises(type(error)):
            MessageSigner(keys, now=lambda: 1_790_000_000).sign_response(200, headers, b"x")
        return
    MessageSigner(keys, now=lambda: 1_790_000_000).sign_response(200, headers, b"x")
    assert headers.getall("Signature") == reference.getall("Signature")
