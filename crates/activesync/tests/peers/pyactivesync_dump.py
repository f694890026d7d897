"""Writes what pyactivesync (an independent EAS implementation) knows, for easgate's tests:

  pyactivesync_dump.py codepages          -> JSON {page: {tag: token}} on stdout
  pyactivesync_dump.py encode DIR         -> DIR/NAME.wbxml made by pyactivesync's encoder, and
                                             DIR/expected.json: NAME -> [[path, text], ...]
"""
import json
import os
import sys

from pyactivesync._codepages import CODEPAGES
from pyactivesync._wbxml import WBXMLWriter, wtag

DOCS = {
    "foldersync": ("FolderHierarchy", "FolderSync", [("FolderHierarchy", "SyncKey", "0")]),
    "ping": ("Ping", "Ping", [("Ping", "HeartbeatInterval", "600")]),
    "settings": ("Settings", "Settings", [("Settings", "DeviceInformation", [("Settings", "Set", [
        ("Settings", "Model", "Pixel 8"), ("Settings", "OS", "Android 15"),
        ("Settings", "FriendlyName", "Büro-Telefon"), ("Settings", "UserAgent", "pyactivesync/0.17"),
    ])])]),
    "provision": ("Provision", "Provision", [("Provision", "Policies", [("Provision", "Policy", [
        ("Provision", "PolicyType", "MS-EAS-Provisioning-WBXML")])])]),
    "sync": ("AirSync", "Sync", [("AirSync", "Collections", [("AirSync", "Collection", [
        ("AirSync", "SyncKey", "0"), ("AirSync", "CollectionId", "2"),
        ("AirSync", "Options", [("AirSyncBase", "BodyPreference", [("AirSyncBase", "Type", "2"),
            ("AirSyncBase", "TruncationSize", "32768")])]),
    ])])]),
    "itemoperations": ("ItemOperations", "ItemOperations", [("ItemOperations", "Fetch", [
        ("ItemOperations", "Store", "Mailbox"), ("AirSyncBase", "FileReference", "2%3a1%3a0")])]),
    "sendmail": ("ComposeMail", "SendMail", [("ComposeMail", "ClientId", "42"),
        ("ComposeMail", "SaveInSentItems", None), ("ComposeMail", "MIME", "Subject: x\r\n\r\nbody")]),
}


def build(page, name, content):
    if content is None:
        return wtag(page, name)
    if isinstance(content, str):
        return wtag(page, name, text=content)
    return wtag(page, name, children=[build(*c) for c in content])


def leaves(prefix, page, name, content, out):
    path = f"{prefix}/{page}:{name}"
    if isinstance(content, str):
        out.append([path, content])
    elif content is not None:
        for c in content:
            leaves(path, *c, out)


def main():
    if sys.argv[1] == "codepages":
        json.dump(CODEPAGES, sys.stdout)
        return
    target = sys.argv[2]
    expected = {}
    for doc, (page, name, content) in DOCS.items():
        writer = WBXMLWriter()
        build(page, name, content)(writer)
        with open(os.path.join(target, f"{doc}.wbxml"), "wb") as f:
            f.write(writer.render())
        out = []
        leaves("", page, name, content, out)
        expected[doc] = out
    with open(os.path.join(target, "expected.json"), "w") as f:
        json.dump(expected, f)


main()
