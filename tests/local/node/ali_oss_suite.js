// ali-oss (Node) against the local OSS emulator, through a CNAME endpoint (ali-oss has no path style).
// Environment: OSS_PORT, OSS_BUCKET, OSS_AK, OSS_SECRET, optional OSS_TOKEN, OSS_V4 ("1" for V4),
// OSS_PREFIX (keys are written under it), OSS_TMP (a scratch directory).
'use strict';

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const OSS = require('ali-oss');

const port = process.env.OSS_PORT;
const bucket = process.env.OSS_BUCKET;
const v4 = process.env.OSS_V4 === '1';
const prefix = process.env.OSS_PREFIX;

function client(host) {
  return new OSS({
    region: 'oss-cn-hangzhou',
    accessKeyId: process.env.OSS_AK,
    accessKeySecret: process.env.OSS_SECRET,
    stsToken: process.env.OSS_TOKEN || undefined,
    bucket,
    endpoint: `http://${host}:${port}`,
    cname: true,
    secure: false,
    authorizationV4: v4,
    retryMax: 0,
    timeout: 20000,
  });
}

// Fetch a URL from 127.0.0.1 whatever its host name, keeping that name in the Host header.
function fetchVia127(url, method = 'GET', body = null, headers = {}) {
  const parsed = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: parsed.port, method, path: parsed.pathname + parsed.search,
      headers: { Host: parsed.host, ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function main() {
  const oss = client('127.0.0.1');
  const key = `${prefix}报告/a b+c.txt`;
  const body = crypto.randomBytes(4096);
  const md5 = crypto.createHash('md5').update(body).digest('hex').toUpperCase();

  const put = await oss.put(key, body, { mime: 'text/plain', meta: { owner: 'dana' } });
  assert.strictEqual(put.res.status, 200);
  assert.strictEqual(put.res.headers.etag, `"${md5}"`);

  const got = await oss.get(key);
  assert.ok(Buffer.compare(got.content, body) === 0, 'get body');
  const ranged = await oss.get(key, { headers: { Range: 'bytes=0-99' } });
  assert.strictEqual(ranged.res.status, 206);
  assert.ok(Buffer.compare(ranged.content, body.subarray(0, 100)) === 0, 'range body');

  const head = await oss.head(key);
  assert.strictEqual(head.meta.owner, 'dana');
  assert.strictEqual(head.res.headers['content-length'], '4096');
  assert.strictEqual(head.res.headers['content-type'], 'text/plain');

  for (const name of ['d/1', 'd/2', 'd/3', 'e.txt', 'f.txt']) {
    await oss.put(`${prefix}list/${name}`, Buffer.from(name));
  }
  const listed = await oss.list({ prefix: `${prefix}list/`, delimiter: '/', 'max-keys': 100 });
  assert.deepStrictEqual(listed.objects.map((o) => o.name), [`${prefix}list/e.txt`, `${prefix}list/f.txt`]);
  assert.deepStrictEqual(listed.prefixes, [`${prefix}list/d/`]);
  const firstPage = await oss.list({ prefix: `${prefix}list/`, 'max-keys': 2 });
  assert.strictEqual(firstPage.isTruncated, true);
  const secondPage = await oss.list({ prefix: `${prefix}list/`, 'max-keys': 2, marker: firstPage.nextMarker });
  assert.deepStrictEqual(secondPage.objects.map((o) => o.name), [`${prefix}list/d/3`, `${prefix}list/e.txt`]);
  let token;
  const v2keys = [];
  do {
    const page = await oss.listV2({ prefix: `${prefix}list/`, 'max-keys': 2, 'continuation-token': token });
    v2keys.push(...(page.objects || []).map((o) => o.name));
    token = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (token);
  assert.deepStrictEqual(v2keys, ['d/1', 'd/2', 'd/3', 'e.txt', 'f.txt'].map((n) => `${prefix}list/${n}`));

  const file = path.join(process.env.OSS_TMP, `mp-${v4 ? 'v4' : 'v1'}.bin`);
  const big = crypto.randomBytes(250 * 1024);
  fs.writeFileSync(file, big);
  const mp = await oss.multipartUpload(`${prefix}big.bin`, file, { partSize: 100 * 1024, parallel: 2 });
  assert.strictEqual(mp.res.status, 200);
  const bigBack = await oss.get(`${prefix}big.bin`);
  assert.ok(Buffer.compare(bigBack.content, big) === 0, 'multipart body');

  await oss.copy(`${prefix}copy.txt`, key);
  assert.ok(Buffer.compare((await oss.get(`${prefix}copy.txt`)).content, body) === 0, 'copy body');

  await oss.delete(`${prefix}copy.txt`);
  await assert.rejects(oss.get(`${prefix}copy.txt`), (err) => err.code === 'NoSuchKey' && err.status === 404);
  const multi = await oss.deleteMulti([`${prefix}list/e.txt`, `${prefix}list/f.txt`]);
  assert.strictEqual(multi.res.status, 200);

  // presign, then fetch with plain http
  let url;
  if (v4) {
    url = await oss.signatureUrlV4('GET', 300, { headers: {} }, key);
  } else {
    // ali-oss refuses to presign for an IP endpoint; a host name mapped by CNAME works
    url = client('localhost').signatureUrl(key, { expires: 300 });
  }
  const fetched = await fetchVia127(url);
  assert.strictEqual(fetched.status, 200, `presigned GET ${fetched.body}`);
  assert.ok(Buffer.compare(fetched.body, body) === 0, 'presigned body');
  // flip the signature's first character (to a different one)
  const tamperedUrl = url.replace(/(Signature=|x-oss-signature=)(.)/, (m, name, c) => name + (c === '0' ? '1' : '0'));
  assert.notStrictEqual(tamperedUrl, url);
  const tampered = await fetchVia127(tamperedUrl);
  assert.strictEqual(tampered.status, 403);
  assert.ok(tampered.body.toString().includes('SignatureDoesNotMatch'));

  // PostObject: a browser-style form upload signed with the SDK's own policy signers
  const policyText = JSON.stringify({
    expiration: new Date(Date.now() + 600 * 1000).toISOString(),
    conditions: [['starts-with', '$key', `${prefix}form/`], ['content-length-range', 1, 1024 * 1024]],
  });
  const policy = Buffer.from(policyText, 'utf8').toString('base64');
  const form = new FormData();
  form.append('key', `${prefix}form/\${filename}`);
  if (v4) {
    const now = new Date();
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    form.append('x-oss-signature-version', 'OSS4-HMAC-SHA256');
    form.append('x-oss-credential', `${process.env.OSS_AK}/${stamp.slice(0, 8)}/cn-hangzhou/oss/aliyun_v4_request`);
    form.append('x-oss-date', stamp);
    form.append('x-oss-signature', oss.signPostObjectPolicyV4(policyText, now));
    form.append('policy', policy);
  } else {
    const signed = oss.calculatePostSignature(policyText);
    assert.strictEqual(signed.policy, policy);
    form.append('OSSAccessKeyId', signed.OSSAccessKeyId);
    form.append('policy', signed.policy);
    form.append('Signature', signed.Signature);
  }
  if (process.env.OSS_TOKEN) form.append('x-oss-security-token', process.env.OSS_TOKEN);
  form.append('success_action_status', '201');
  const upload = crypto.randomBytes(2000);
  form.append('file', new Blob([upload]), 'pic.png');
  const posted = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: form });
  assert.strictEqual(posted.status, 201, await posted.text());
  const postedBack = await oss.get(`${prefix}form/pic.png`);
  assert.ok(Buffer.compare(postedBack.content, upload) === 0, 'posted body');

  // symlinks (PutSymlink / GetSymlink; GET and HEAD follow the link; HeadObject reference)
  const target = `${prefix}sym/目标 target.txt`;
  const link = `${prefix}sym/link.txt`;
  await oss.put(target, Buffer.from('through the link'), { mime: 'text/x-target' });
  await oss.putSymlink(link, target, { meta: { who: 'link' } });
  assert.strictEqual((await oss.getSymlink(link)).targetName, target);
  const linkHead = await oss.head(link);
  assert.strictEqual(linkHead.res.headers['x-oss-object-type'], 'Symlink');
  assert.strictEqual(linkHead.res.headers['content-length'], String('through the link'.length));
  assert.strictEqual(linkHead.meta.who, 'link');
  assert.strictEqual((await oss.get(link)).content.toString(), 'through the link');
  await oss.putSymlink(`${prefix}sym/dangling`, `${prefix}sym/none`);
  await assert.rejects(oss.get(`${prefix}sym/dangling`),
    (err) => err.status === 404 && err.code === 'SymlinkTargetNotExist');
  await assert.rejects(oss.getSymlink(target), (err) => err.status === 400 && err.code === 'NotSymlink');

  // AppendObject with CRC-64 (x-oss-hash-crc64ecma of the whole object after each append)
  const appendKey = `${prefix}append.log`;
  const a1 = await oss.append(appendKey, Buffer.from('hello '));
  assert.strictEqual(a1.nextAppendPosition, '6');
  const a2 = await oss.append(appendKey, Buffer.from('world'), { position: a1.nextAppendPosition });
  assert.strictEqual(a2.nextAppendPosition, '11');
  assert.strictEqual(a2.res.headers['x-oss-hash-crc64ecma'], process.env.CRC_HELLO_WORLD);
  await assert.rejects(oss.append(appendKey, Buffer.from('x'), { position: '6' }),
    (err) => err.status === 409 && err.code === 'PositionNotEqualToLength');
  assert.strictEqual((await oss.get(appendKey)).content.toString(), 'hello world');
  assert.strictEqual((await oss.head(appendKey)).res.headers['x-oss-object-type'], 'Appendable');

  // error precedence and EC: a missing object is NoSuchKey with its documented EC
  await assert.rejects(oss.get(`${prefix}missing`),
    (err) => err.status === 404 && err.code === 'NoSuchKey' && err.ecCode === '0026-00000001');

  // ListMultipartUploads pages with max-uploads and the markers it answers
  const ids = [];
  for (const name of ['u/a', 'u/b', 'u/c']) {
    ids.push((await oss.initMultipartUpload(`${prefix}${name}`)).uploadId);
  }
  const seen = [];
  let query = { prefix: `${prefix}u/`, 'max-uploads': 2 };
  for (;;) {
    const page = await oss.listUploads(query);
    seen.push(...page.uploads.map((u) => u.name));
    if (!page.isTruncated) break;
    query = { ...query, 'key-marker': page.nextKeyMarker, 'upload-id-marker': page.nextUploadIdMarker };
  }
  assert.deepStrictEqual(seen, ['u/a', 'u/b', 'u/c'].map((n) => `${prefix}${n}`));
  for (const [i, name] of ['u/a', 'u/b', 'u/c'].entries()) {
    await oss.abortMultipartUpload(`${prefix}${name}`, ids[i]);
  }

  console.log(JSON.stringify({ ok: true, v4, sts: Boolean(process.env.OSS_TOKEN) }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
