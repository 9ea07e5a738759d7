/**
 * The real euca2ools 3.4 (its Python 3 conversion, in the project's third-party folder) as the tests' oracle for
 * the bundle format. The tarball is found at $CHROMOGENIC_THIRD_PARTY, else ../shared/third-party beside the
 * repository (see that folder's README), unpacked once into a cache folder, and run with Debian's python3 and
 * its lxml, requests, six and yaml (scripts/setup.sh's test packages) plus the openssl command.
 */
import { execFile } from "node:child_process";
import { access, mkdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);
const TARBALL = "euca2ools-3.4-py3.tar.gz";
/** Debian's interpreter: the one the python3-* packages install into (a pyenv shim on PATH has none of them). */
const PYTHON = "/usr/bin/python3";

function tarballCandidates(): string[] {
  const dirs = [process.env.CHROMOGENIC_THIRD_PARTY, resolve(process.cwd(), "..", "shared", "third-party")];
  return dirs.filter((d): d is string => !!d).map((d) => join(d, TARBALL));
}

let unpacked: Promise<string> | undefined;

/** The folder holding euca2ools/ and requestbuilder/, unpacked on first use. */
export function euca2oolsHome(): Promise<string> {
  unpacked ??= (async () => {
    const home = join(process.env.XDG_CACHE_HOME ?? join(tmpdir(), "chromogenic-test-cache"), "euca2ools-3.4-py3");
    if (await exists(join(home, "euca2ools", "bin", "euca-bundle-image"))) return home;
    let tarball: string | undefined;
    for (const candidate of tarballCandidates()) if (await exists(candidate)) tarball ??= candidate;
    if (!tarball) {
      throw new Error(
        `${TARBALL} not found (looked in ${tarballCandidates().join(", ")}); set CHROMOGENIC_THIRD_PARTY to the ` +
          "folder holding it (see ../shared/third-party/README.md)",
      );
    }
    try {
      await exec(PYTHON, ["-c", "import lxml, requests, six, yaml"]);
    } catch {
      throw new Error(
        `${PYTHON} lacks lxml/requests/six/yaml: apt-get install python3-lxml python3-requests python3-six python3-yaml`,
      );
    }
    // Unpacked beside and renamed, so a run killed half-way leaves no half tree behind the check above.
    const partial = `${home}.${process.pid}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    await exec("tar", ["-xzf", tarball, "-C", partial]);
    await rename(partial, home).catch(async (e: NodeJS.ErrnoException) => {
      // Another test process won the race: its copy is as good.
      await rm(partial, { recursive: true, force: true });
      if (!(await exists(home))) throw e;
    });
    return home;
  })();
  return unpacked;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Runs one euca2ools command (`euca-bundle-image`, `euca-unbundle`); throws with its stderr when it fails. */
export async function euca(command: string, args: readonly string[]): Promise<string> {
  const home = await euca2oolsHome();
  try {
    const { stdout } = await exec(PYTHON, ["-W", "ignore", join(home, "euca2ools", "bin", command), ...args], {
      env: { ...process.env, PYTHONPATH: `${join(home, "euca2ools")}:${join(home, "requestbuilder")}` },
      maxBuffer: 16 * 2 ** 20,
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${command} failed: ${err.stderr ?? err.message}`);
  }
}

export interface BundleKeys {
  readonly userKey: string;
  readonly userCert: string;
  readonly cloudKey: string;
  readonly cloudCert: string;
  /** A third key pair, neither the user's nor the cloud's. */
  readonly otherKey: string;
  readonly otherCert: string;
}

/** RSA key pairs and self-signed certificates for the user, the cloud and a stranger, made with openssl. */
export async function makeBundleKeys(dir: string): Promise<BundleKeys> {
  const pair = async (name: string) => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    await exec("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`,
      "-keyout", key, "-out", cert,
    ]).catch((e: NodeJS.ErrnoException) => {
      throw new Error(e.code === "ENOENT" ? "the openssl command is missing (Debian package openssl)" : e.message);
    }); // prettier-ignore
    return { key, cert };
  };
  const [user, cloud, other] = await Promise.all([pair("user"), pair("cloud"), pair("other")]);
  return {
    userKey: user.key,
    userCert: user.cert,
    cloudKey: cloud.key,
    cloudCert: cloud.cert,
    otherKey: other.key,
    otherCert: other.cert,
  };
}
