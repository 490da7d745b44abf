import { describe, expect, it } from "vitest";
import { toCsv } from "./csv";

describe("toCsv", () => {
  it("writes a header and one CRLF-terminated row per object, quoting what needs it", async () => {
    const csv = await toCsv([
      { id: 1, description: "credits granted", amount: 500 },
      { id: 2, description: 'Goodwill, "sorry"', amount: -20 },
    ]);
    expect(csv.split("\r\n")).toEqual(["id,description,amount", "1,credits granted,500", '2,"Goodwill, ""sorry""",-20']);
  });

  it("keeps a typed reason from running as a spreadsheet formula", async () => {
    const csv = await toCsv([{ description: "=HYPERLINK(\"http://evil\")" }, { description: "@SUM(A1)" }]);
    expect(csv).not.toMatch(/\r\n"?=/);
    expect(csv).toContain("'=HYPERLINK");
    expect(csv).toContain("'@SUM(A1)");
  });

  it("leaves negative numbers as figures (only text is escaped)", async () => {
    const csv = await toCsv([{ description: "-5 credits", amount: -600 }]);
    expect(csv.split("\r\n")[1]).toBe("\"'-5 credits\",-600");
  });
});
