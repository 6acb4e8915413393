// ali-oss in a browser-style set-up: credentials come from our /sts endpoint through refreshSTSToken,
// exactly as the seed's Node sample does. Prints one JSON line with what happened.
const path = require('path');
const OSS = require(path.join(__dirname, '..', '..', 'local', 'node', 'node_modules', 'ali-oss'));

async function fetchToken() {
  const response = await fetch(`${process.env.GATEWAY}/sts`, {
    method: 'POST',
    headers: { 'X-Api-Key': process.env.API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ actions: ['read', 'list'] }),
  });
  if (!response.ok) throw new Error(`sts answered ${response.status}`);
  return response.json();
}

async function main() {
  let refreshes = 0;
  const first = await fetchToken();
  const client = new OSS({
    region: 'oss-cn-hangzhou',
    endpoint: process.env.ENDPOINT, // the emulator, addressed by CNAME (ali-oss has no path style)
    cname: true,
    accessKeyId: first.AccessKeyId,
    accessKeySecret: first.AccessKeySecret,
    stsToken: first.SecurityToken,
    bucket: first.Bucket,
    authorizationV4: true,
    refreshSTSTokenInterval: 0, // refresh before every request: proves the refresh path works
    refreshSTSToken: async () => {
      refreshes += 1;
      const token = await fetchToken();
      return { accessKeyId: token.AccessKeyId, accessKeySecret: token.AccessKeySecret, stsToken: token.SecurityToken };
    },
  });
  const result = { prefix: first.Prefix, expiration: first.Expiration };
  const inside = await client.get(`${first.Prefix}exampleobject.txt`);
  result.inside = inside.content.toString();
  try {
    await client.get('exampleobject.txt');
    result.outside = 'allowed';
  } catch (err) {
    result.outside = `${err.status} ${err.code}`;
  }
  const listed = await client.listV2({ prefix: first.Prefix, 'max-keys': 100 });
  result.listed = (listed.objects || []).map((o) => o.name);
  result.refreshes = refreshes;
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
