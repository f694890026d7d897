"""Enroll with PyScep (AES-256 + SHA-256 over POST): pyscep_enroll.py URL CHALLENGE OUT_CERT_PEM.

Exit 0 and the certificate in OUT_CERT_PEM on success; exit 3 and the failInfo on stdout when
the server refuses.
"""
import sys

from scep import Client

url, challenge, out = sys.argv[1], sys.argv[2], sys.argv[3]
client = Client.Client(url)
identity, identity_key = Client.SigningRequest.generate_self_signed(
    cn="PyScep-device", key_usage={"digital_signature", "key_encipherment"})
csr, key = Client.SigningRequest.generate_csr(
    cn="PyScep-device", key_usage={"digital_signature", "key_encipherment"}, password=challenge)
result = client.enrol(csr=csr, identity=identity, identity_private_key=identity_key)
if result.status == Client.PKIStatus.FAILURE:
    print(f"failInfo: {result.fail_info}")
    sys.exit(3)
with open(out, "wb") as f:
    f.write(result.certificates[0].to_pem())
print("enrolled")
