"""A loopback proxy that lets object_store's GCS client (XML API) talk to
fake-gcs-server (JSON API only). Python stdlib only.

    python3 gcs_proxy.py LISTEN_PORT UPSTREAM_PORT

Translates exactly what fake-gcs-server lacks:
- PUT /{bucket}/{object} (a simple upload) -> a JSON-API multipart upload
  (uploadType=multipart: uploadType=media ignores ifGenerationMatch), with
  x-goog-if-generation-match as ifGenerationMatch and x-goog-meta-* as
  metadata; the reply carries ETag and x-goog-generation as GCS's does.
- XML multipart uploads (POST ?uploads, PUT ?partNumber&uploadId, POST
  ?uploadId, DELETE ?uploadId): parts are kept here and the object is
  uploaded whole on completion.
Everything else (GET, HEAD, DELETE, list) goes upstream unchanged.
"""

import http.client
import http.server
import json
import re
import sys
import threading
import uuid
from urllib.parse import parse_qs, quote, unquote, urlsplit

UPSTREAM = ("127.0.0.1", 0)
UPLOADS = {}
LOCK = threading.Lock()


def upstream(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(*UPSTREAM, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def split_object(path):
    """'/bucket/obj%2Fname' -> ('bucket', 'obj/name')."""
    bucket, _, name = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(name)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it every reply waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, headers, body, head=False):
        self.send_response(status)
        sent_length = False
        for name, value in headers:
            lower = name.lower()
            if lower in ("transfer-encoding", "connection", "date", "server"):
                continue
            if lower == "content-length":
                # A HEAD reply keeps the object's length.
                if not head:
                    continue
                sent_length = True
            self.send_header(name, value)
        if not sent_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def forward(self, head=False):
        body = self.body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        status, out_headers, out = upstream(self.command, self.path, body or None, headers)
        self.reply(status, out_headers, out, head=head)

    def upload(self, bucket, name, data, content_type, metadata, generation_match):
        """A JSON-API multipart upload; replies as the XML API does."""
        boundary = "ac-proxy-" + uuid.uuid4().hex
        meta = {"name": name, "contentType": content_type}
        if metadata:
            meta["metadata"] = metadata
        body = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(meta)}\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        query = f"uploadType=multipart&name={quote(name, safe='')}"
        if generation_match is not None:
            query += f"&ifGenerationMatch={generation_match}"
        status, headers, out = upstream(
            "POST",
            f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?{query}",
            body,
            {"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        if status != 200:
            return status, [("Content-Type", "text/plain")], out
        obj = json.loads(out)
        etag = obj.get("etag", "").strip('"')
        return 200, [("ETag", f'"{etag}"'), ("x-goog-generation", str(obj.get("generation", "")))], b""

    def put_object(self, bucket, name, data):
        metadata = {
            k[len("x-goog-meta-"):]: v
            for k, v in self.headers.items()
            if k.lower().startswith("x-goog-meta-")
        }
        content_type = self.headers.get("Content-Type") or "application/octet-stream"
        match = self.headers.get("x-goog-if-generation-match")
        return self.upload(bucket, name, data, content_type, metadata, match)

    def do_PUT(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        bucket, name = split_object(url.path)
        data = self.body()
        if "uploadId" in query:
            with LOCK:
                upload = UPLOADS.get(query["uploadId"][0])
                if upload is None:
                    return self.reply(404, [], b"no such upload")
                part = int(query["partNumber"][0])
                upload["parts"][part] = data
            return self.reply(200, [("ETag", f'"part-{part}"')], b"")
        self.reply(*self.put_object(bucket, name, data))

    def do_POST(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if "uploads" in query:
            self.body()
            bucket, name = split_object(url.path)
            upload_id = uuid.uuid4().hex
            with LOCK:
                UPLOADS[upload_id] = {
                    "parts": {},
                    "metadata": {
                        k[len("x-goog-meta-"):]: v
                        for k, v in self.headers.items()
                        if k.lower().startswith("x-goog-meta-")
                    },
                    "content_type": self.headers.get("Content-Type") or "application/octet-stream",
                }
            xml = (
                "<InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key>"
                "<UploadId>{}</UploadId></InitiateMultipartUploadResult>"
            ).format(bucket, name, upload_id)
            return self.reply(200, [("Content-Type", "application/xml")], xml.encode())
        if "uploadId" in query:
            listed = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", self.body())]
            bucket, name = split_object(url.path)
            with LOCK:
                upload = UPLOADS.pop(query["uploadId"][0], None)
            if upload is None:
                return self.reply(404, [], b"no such upload")
            data = b"".join(upload["parts"][n] for n in listed)
            status, headers, out = self.upload(
                bucket, name, data, upload["content_type"], upload["metadata"], None
            )
            if status != 200:
                return self.reply(status, headers, out)
            etag = dict(headers)["ETag"]
            xml = (
                "<CompleteMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key>"
                "<ETag>{}</ETag></CompleteMultipartUploadResult>"
            ).format(bucket, name, etag)
            return self.reply(200, headers + [("Content-Type", "application/xml")], xml.encode())
        self.forward()

    def do_DELETE(self):
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        if "uploadId" in query:
            self.body()
            with LOCK:
                UPLOADS.pop(query["uploadId"][0], None)
            return self.reply(204, [], b"")
        self.forward()

    def do_GET(self):
        self.forward()

    def do_HEAD(self):
        self.forward(head=True)


def main():
    global UPSTREAM
    listen, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    UPSTREAM = ("127.0.0.1", upstream_port)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", listen), Proxy)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
