import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(__dirname, "..");
const styles = readFileSync(path.join(SRC, "styles.css"), "utf8");
const HEX = /#[0-9a-fA-F]{3,8}\b/g;

function files(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return files(full, pattern);
    return pattern.test(name) && !/\.test\.tsx?$/.test(name) ? [full] : [];
  });
}

/** The declarations inside the first block that follows `selector` (one level of nesting). */
function tokens(css: string): Map<string, string> {
  return new Map([...css.matchAll(/(--[\w-]+)\s*:\s*([^;]+);/g)].map((m) => [m[1]!, m[2]!.trim()]));
}

const darkStart = styles.indexOf("@media (prefers-color-scheme: dark)");
const lightBlock = styles.slice(0, darkStart);
const darkBlock = styles.slice(darkStart, styles.indexOf("\n}\n", darkStart));

describe("design tokens and dark mode", () => {
  it("components use colour tokens only: no hard-coded colour outside the token definitions", () => {
    const offenders: string[] = [];
    for (const file of files(SRC, /\.(tsx?|css)$/)) {
      let text = readFileSync(file, "utf8");
      // The token definitions themselves (styles.css up to the end of its dark block) are where colours belong.
      if (file.endsWith(`${path.sep}styles.css`)) text = text.slice(text.indexOf("\n}\n", darkStart));
      for (const match of text.match(HEX) ?? []) offenders.push(`${path.relative(SRC, file)}: ${match}`);
    }
    expect(offenders).toEqual([]);
  });

  it("the dark theme gives every colour token its own value", () => {
    const light = [...tokens(lightBlock)].filter(([, value]) => /^#[0-9a-fA-F]{3,8}$/.test(value));
    const dark = tokens(darkBlock);
    expect(light.length).toBeGreaterThan(20);
    for (const [name, value] of light) {
      expect(dark.get(name), name).toBeDefined();
      expect(dark.get(name), name).not.toBe(value);
    }
  });
});
