"""P13: HTTPS between the homeserver and the bridge.

A CA and a leaf certificate for 127.0.0.1 are made here with ``cryptography``; a Synapse
of this module's own trusts that CA (``SSL_CERT_FILE``: its appservice client uses
Twisted's platform trust, which is OpenSSL's default verify paths) and reaches the bridge
only over HTTPS. A member then talks to the bot and gets its answers.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ruamel.yaml import YAML

from clutto_bridge import cli
from clutto_bridge.app import Bridge
from clutto_bridge.config import EXAMPLE_CONFIG, ConfigFile
from clutto_bridge.demo.synapse import LocalSynapse, free_port
from tests.integration.conftest import _make_bot_admin
from tests.integration.matrix_client import MatrixClient


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path


def make_certificates(folder: Path) -> Certificates:
    """A CA, and a leaf for 127.0.0.1 and localhost signed by it (valid for a day)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clutto test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = Certificates(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths.key.chmod(0o600)
    return paths


@dataclass
class TlsHomeserver:
    synapse: LocalSynapse
    template: Path
    certificates: Certificates
    port: int
    registration: dict


@pytest.fixture(scope="module")
def tls_homeserver(tmp_path_factory: pytest.TempPathFactory) -> TlsHomeserver:
    folder = tmp_path_factory.mktemp("tls")
    certificates = make_certificates(folder)
    port = free_port()
    synapse = LocalSynapse(folder / "synapse", env={"SSL_CERT_FILE": str(certificates.ca)})
    template = folder / "template.yaml"
    template.write_text(EXAMPLE_CONFIG.read_text())
    file = ConfigFile(template)
    file.load()
    file["homeserver.address"] = synapse.url
    file["homeserver.domain"] = synapse.server_name
    file["appservice.address"] = f"http://127.0.0.1:{port}"  # the registration says https: TLS is on
    file["appservice.port"] = port
    file["appservice.tls.cert"] = str(certificates.cert)
    file["appservice.tls.key"] = str(certificates.key)
    file["security.signing_key"] = str(folder / "signing.key")
    file["security.keyset"] = str(folder / "keyset.json")  # generate-registration creates both
    file.save()
    registration = folder / "registration.yaml"
    assert cli.main(["generate-registration", "-c", str(template), "-r", str(registration)]) == 0
    synapse.write_config([registration])
    synapse.start()
    written = ConfigFile(template)
    written.load()
    try:
        asyncio.run(_make_bot_admin(synapse, written.settings()))
        yield TlsHomeserver(synapse, template, certificates, port, YAML().load(registration.read_text()))
    finally:
        synapse.stop()


# One database: TLS between homeserver and bridge; the database plays no part.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P13")
async def test_the_whole_appservice_flow_runs_over_https(
    tls_homeserver: TlsHomeserver,
    database_url: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    hs = tls_homeserver
    assert hs.registration["url"] == f"https://127.0.0.1:{hs.port}"
    config = tmp_path / "config.yaml"
    config.write_text(hs.template.read_text())
    file = ConfigFile(config)
    file.load()
    file["appservice.database"] = database_url
    file.save()
    bridge = Bridge(file.settings())
    await bridge.start()
    try:
        base = f"https://127.0.0.1:{hs.port}"
        trusting = ssl.create_default_context(cafile=str(hs.certificates.ca))
        async with http.get(f"{base}/_matrix/mau/live", ssl=trusting) as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        async with http.get(f"{base}/_clutto/v1/keys", ssl=trusting) as resp:
            assert resp.status == 200 and "Strict-Transport-Security" in resp.headers
        with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served on the port
            async with http.get(f"http://127.0.0.1:{hs.port}/_matrix/mau/live") as resp:
                await resp.read()

        account = await hs.synapse.register_user(f"alice-{database_url.split(':')[0]}-{free_port()}")
        alice = await MatrixClient.login(hs.synapse.url, account.user_id.split(":")[0][1:], account.password, http)
        bot = bridge.settings.bot_mxid
        dm = await alice.create_dm(bot)
        await alice.wait_for_notice(dm, "Send help", sender=bot)  # the invite reached the bridge over TLS
        await alice.send_text(dm, "help")
        await alice.wait_for_notice(dm, "team create", sender=bot)  # and the answer came back
    finally:
        await bridge.stop()
