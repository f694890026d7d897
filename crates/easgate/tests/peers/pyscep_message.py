"""Build (not send) a PKCSReq PKIOperation message with PyScep:
pyscep_message.py [--signer CERT.pem KEY.pem] URL CHALLENGE CN OUT [SIGNING_TIME_UNIX]

The message is encrypted to the CA's SCEP recipient fetched from URL (GetCACaps/GetCACert)
and written to OUT (DER), so the test can send it itself — e.g. by GET with message=.
With --signer, the CSR is for KEY and the message is signed with CERT (made elsewhere, e.g. by
`openssl req -x509`) instead of a self-signed certificate PyScep makes.
"""
import sys

signer = None
if sys.argv[1] == "--signer":
    signer = (sys.argv[2], sys.argv[3])
    del sys.argv[1:4]

from scep import Client
from scep.Client.builders import PKIMessageBuilder, Signer
from scep.Client.cryptoutils import hex_digest_for_data
from scep.Client.enums import MessageType
from scep.Client.envelope import PKCSPKIEnvelopeBuilder

url, challenge, cn, out = sys.argv[1:5]
if len(sys.argv) > 5:
    # Add a signingTime attribute (PyScep leaves it out, as NDES does).
    import datetime
    from asn1crypto.cms import CMSAttribute
    from asn1crypto.core import UTCTime

    when = datetime.datetime.fromtimestamp(int(sys.argv[5]), datetime.timezone.utc)
    original_sign = Signer.sign

    def sign_with_time(self, data, content_type, content_digest, cms_attributes):
        cms_attributes = list(cms_attributes) + [CMSAttribute({"type": "signing_time", "values": [UTCTime(when)]})]
        return original_sign(self, data, content_type, content_digest, cms_attributes)

    Signer.sign = sign_with_time
client = Client.Client(url)
cacaps = client.get_ca_capabilities()
ca_certs = client.get_ca_certs()
if signer:
    from scep.Client.certificate import Certificate
    from scep.Client.privatekey import PrivateKey

    identity = Certificate.from_pem_file(signer[0])
    identity_key = PrivateKey.from_pem_file(signer[1])
    csr, _ = Client.SigningRequest.generate_csr(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}, password=challenge,
        private_key=identity_key)
else:
    identity, identity_key = Client.SigningRequest.generate_self_signed(
        cn=cn, key_usage={"digital_signature", "key_encipherment"})
    csr, _ = Client.SigningRequest.generate_csr(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}, password=challenge)
envelope = PKCSPKIEnvelopeBuilder().encrypt(csr.to_der(), cacaps.strongest_cipher())
envelope = envelope.add_recipient(ca_certs.recipient)
envelope, _, _ = envelope.finalize()
message = PKIMessageBuilder().message_type(MessageType.PKCSReq).pki_envelope(envelope).add_signer(
    Signer(identity, identity_key, cacaps.strongest_signature_algorithm())
).transaction_id(hex_digest_for_data(data=csr.public_key.to_der(), algorithm="sha1")).sender_nonce()
with open(out, "wb") as f:
    f.write(message.finalize(digest_algorithm=cacaps.strongest_message_digest()).dump())
