/**
 * The bundle commands' defaults as euca2ools has them: the eucarc variables for the keys, certificates and
 * account; a new bundle-XXXXXX folder under $TMPDIR without -d; the parts beside the manifest without -s; and a
 * usage error naming the flag (or variable) that is missing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeBundleKeys } from "../../helpers/euca2ools.js";
import { pattern, runCli, scratch } from "../../helpers/tools.js";

test("EC2_PRIVATE_KEY, EC2_CERT, EUCALYPTUS_CERT and EC2_USER_ID stand in for -k, -c, --ec2cert and -u", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  await writeFile(image, pattern(300_000, 4));
  const env = {
    ...process.env,
    EC2_PRIVATE_KEY: keys.userKey,
    EC2_CERT: keys.userCert,
    EUCALYPTUS_CERT: keys.cloudCert,
    EC2_USER_ID: "1234-5678-9012",
    TMPDIR: dir,
  };
  const r = await runCli(["bundle", "-i", image], env);
  assert.equal(r.code, 0, r.stderr);
  const folder = (await readdir(dir)).find((name) => name.startsWith("bundle-"));
  assert.ok(folder, `a bundle-XXXXXX folder in $TMPDIR: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`wrote ${join(dir, folder)}/disk\\.img\\.manifest\\.xml`));
  const manifest = join(dir, folder, "disk.img.manifest.xml");
  assert.match(await readFile(manifest, "latin1"), /<user>123456789012<\/user>/);

  const u = await runCli(["unbundle", "-m", manifest, "-d", join(dir, "back")], env);
  assert.equal(u.code, 0, u.stderr);
  assert.ok((await readFile(join(dir, "back", "disk.img"))).equals(pattern(300_000, 4)));
});

test("a missing key, certificate or account is a usage error naming the flag and the variable", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const env = { ...process.env };
  for (const name of ["EC2_PRIVATE_KEY", "EC2_CERT", "EUCALYPTUS_CERT", "EC2_USER_ID", "EUCA_CERT", "EUCA_PRIVATE_KEY"])
    delete env[name];
  const base = ["bundle", "-i", join(dir, "user.key"), "-d", join(dir, "out")];
  const r = await runCli([...base, "-k", keys.userKey, "-c", keys.userCert, "-u", "123456789012"], env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bundle needs --ec2cert CLOUDCERT \(or \$EUCALYPTUS_CERT\)/);
  const u = await runCli(["unbundle", "-m", join(dir, "x.manifest.xml")], env);
  assert.equal(u.code, 2, u.stderr);
  assert.match(u.stderr, /unbundle needs -k PRIVKEY \(or \$EC2_PRIVATE_KEY\)/);
});
