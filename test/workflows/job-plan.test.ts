/**
 * The plan every job saves before moving a byte: which data flow, how the source is read, how the result
 * leaves, and the temporary space the preflight will ask for — for each kind of source and destination.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { planTransfer, temporarySpace, type PlanFacts } from "../../src/workflows/job-plan.js";
import { createOptionsFor } from "../../src/workflows/output-options.js";
import type { JobRequest } from "../../src/workflows/job-state.js";

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const GLANCE = ["qcow2", "raw", "vmdk", "vhd", "vhdx", "vdi", "iso"];

function migrate(extra: Partial<JobRequest["destination"]> = {}, clean = false): JobRequest {
  return {
    kind: "migrate",
    source: { cloud: "a", image: "x" },
    destination: { kind: "cloud", cloud: "b", name: "x", ...extra } as JobRequest["destination"],
    clean: clean ? {} : undefined,
  };
}

function facts(request: JobRequest, format: string, more: Partial<PlanFacts> = {}): PlanFacts {
  return {
    request,
    source: { format, size: GiB },
    sourceRandomAccess: true,
    destinationFormats: GLANCE,
    destinationLabel: "openstack:b",
    workDir: "/w",
    ...more,
  };
}

test("same format: passthrough, streamed both ways, no temporary space", () => {
  const p = planTransfer(facts(migrate(), "qcow2"));
  assert.deepEqual(
    [p.mode, p.targetFormat, p.sourceAccess, p.targetAccess, p.temporaryBytes],
    ["passthrough", "qcow2", "stream", "stream", 0],
  );
  assert.ok(p.notes.includes("qcow2: the destination's preferred disk format"));
});

test("qcow2 → raw: read in place with Range, raw written straight into the upload, no temporary space", () => {
  const p = planTransfer(facts(migrate({ format: "raw" }), "qcow2"));
  assert.deepEqual(
    [p.mode, p.sourceAccess, p.targetAccess, p.temporaryBytes],
    ["convert", "random-access", "stream", 0],
  );
  assert.ok(p.notes.includes("qcow2 source read in place with positional (Range) reads"));
  assert.ok(!p.notes.some((n) => /downloaded/.test(n)));
  // qcow2 → vdi (a writer that seeks): only the compact output takes space.
  const vdi = planTransfer(facts(migrate({ format: "vdi" }), "qcow2"));
  assert.deepEqual([vdi.sourceAccess, vdi.targetAccess, vdi.temporaryBytes], ["random-access", "temporary-file", GiB]);
  // A store without positional reads still has the compact source downloaded once.
  const noRange = planTransfer(facts(migrate({ format: "raw" }), "qcow2", { sourceRandomAccess: false }));
  assert.deepEqual([noRange.sourceAccess, noRange.temporaryBytes], ["download", GiB]);
  // Every format a driver reads is read in place; one no driver reads is downloaded as stored.
  const vhdx = planTransfer(facts(migrate({ format: "raw" }), "vhdx"));
  assert.deepEqual([vhdx.sourceAccess, vhdx.temporaryBytes], ["random-access", 0]);
  const iso = planTransfer(facts(migrate({ format: "raw" }), "iso"));
  assert.deepEqual([iso.sourceAccess, iso.temporaryBytes], ["download", GiB]);
  // Asked for, the source is downloaded (resumably) before it is converted.
  const first = planTransfer(facts({ ...migrate({ format: "raw" }), downloadFirst: true }, "qcow2"));
  assert.deepEqual([first.sourceAccess, first.temporaryBytes], ["download", GiB]);
});

test("raw → qcow2 (preferred): read in place with Range, one compact temporary output", () => {
  const p = planTransfer(facts(migrate(), "raw"));
  assert.deepEqual(
    [p.mode, p.sourceAccess, p.targetAccess, p.temporaryBytes],
    ["convert", "random-access", "temporary-file", GiB],
  );
  assert.ok(p.notes.some((n) => /needs to seek: one compact temporary file/.test(n)));
  const vmdk = planTransfer(facts(migrate({ format: "vmdk" }), "raw"));
  assert.deepEqual([vmdk.sourceAccess, vmdk.targetAccess, vmdk.temporaryBytes], ["random-access", "stream", 0]);
});

test("cleaning: one sparse raw working copy, sized by the local file's allocation when known", () => {
  const local = planTransfer(facts(migrate({ format: "raw" }, true), "raw", { sourceLocalAllocated: 10 * MiB }));
  assert.deepEqual(
    [local.mode, local.sourceAccess, local.targetAccess, local.temporaryBytes],
    ["clean", "local-file", "stream", 10 * MiB],
  );
  const toQcow2 = planTransfer(facts(migrate({ format: "qcow2" }, true), "raw", { sourceLocalAllocated: 10 * MiB }));
  assert.equal(toQcow2.temporaryBytes, 20 * MiB, "working copy + compact qcow2 output");
  const remoteRaw = planTransfer(facts(migrate({ format: "raw" }, true), "raw"));
  assert.deepEqual([remoteRaw.sourceAccess, remoteRaw.temporaryBytes], ["stream", GiB]);
  assert.ok(remoteRaw.notes.includes("source downloaded straight into the sparse raw working copy"));
  const remoteQcow2 = planTransfer(facts(migrate({ format: "qcow2" }, true), "qcow2"));
  assert.equal(remoteQcow2.sourceAccess, "random-access", "converted into the working copy straight from Glance");
  assert.equal(remoteQcow2.temporaryBytes, 2 * GiB, "working copy + compact output (estimates), no download");
});

test("exports: an OVA, like every file format, reads a source of any format in place", () => {
  const ova: JobRequest = {
    kind: "export",
    source: { cloud: "a", image: "x" },
    destination: { kind: "file", path: "/o.ova", format: "ova", target: "vmware" },
  };
  for (const format of ["raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi"]) {
    const p = planTransfer({ ...facts(ova, format), destinationFormats: undefined });
    assert.deepEqual(
      [p.mode, p.sourceAccess, p.targetAccess, p.temporaryBytes],
      ["convert", "random-access", "file", 0],
      `${format} → ova`,
    );
    assert.ok(p.notes.includes(`${format} source read in place with positional (Range) reads`));
  }
  // Without positional reads, or from a format no driver reads, it is still downloaded.
  const noRange = planTransfer({ ...facts(ova, "qcow2"), destinationFormats: undefined, sourceRandomAccess: false });
  assert.deepEqual([noRange.sourceAccess, noRange.temporaryBytes], ["download", GiB]);
  const iso = planTransfer({ ...facts(ova, "iso"), destinationFormats: undefined });
  assert.deepEqual([iso.sourceAccess, iso.temporaryBytes], ["download", GiB]);
  const q: JobRequest = { ...ova, destination: { kind: "file", path: "/o.qcow2", format: "qcow2" } };
  assert.equal(planTransfer({ ...facts(q, "raw"), destinationFormats: undefined }).sourceAccess, "random-access");
  assert.equal(
    planTransfer({ ...facts(q, "raw"), destinationFormats: undefined, sourceRandomAccess: false }).sourceAccess,
    "download",
  );
});

test("a bundle's verified parts count as temporary space where its download goes into a file, unless --no-part-cache", () => {
  const PIECES = 300 * MiB;
  const bundle = (request: JobRequest) =>
    planTransfer({
      ...facts(request, "raw", { sourceRandomAccess: false }),
      source: { format: "raw", size: GiB, pieceBytes: PIECES },
      ...(request.destination.kind === "file" ? { destinationFormats: undefined } : {}),
    });
  const toFile = (format: string, partCache?: false): JobRequest => ({
    kind: "export",
    source: { cloud: "euca", image: "emi-1" },
    destination: { kind: "file", path: `/o.${format}`, format },
    ...(partCache === false ? { partCache } : {}),
  });
  const raw = bundle(toFile("raw"));
  assert.deepEqual([raw.mode, raw.targetAccess, raw.temporaryBytes], ["passthrough", "file", PIECES]);
  assert.ok(
    raw.notes.some((n) => /verified parts kept in the work directory .*--no-part-cache/.test(n)),
    raw.notes.join("; "),
  );
  const qcow2 = bundle(toFile("qcow2"));
  assert.deepEqual([qcow2.sourceAccess, qcow2.temporaryBytes], ["download", GiB + PIECES]);
  assert.equal(bundle(toFile("raw", false)).temporaryBytes, 0);
  assert.equal(bundle(toFile("qcow2", false)).temporaryBytes, GiB);
  // Streamed straight into an upload: nothing is kept.
  const streamed = bundle(migrate({ format: "raw" }));
  assert.deepEqual([streamed.mode, streamed.targetAccess, streamed.temporaryBytes], ["passthrough", "stream", 0]);
});

test("image create keeps the snapshot's format; refused formats are usage errors before anything moves", () => {
  const create: JobRequest = { ...migrate(), kind: "image-create" };
  assert.equal(planTransfer(facts(create, "raw")).targetFormat, "raw");
  assert.throws(
    () => planTransfer(facts(migrate({ format: "qcow2" }), "raw", { destinationFormats: ["raw", "vmdk"] })),
    /openstack:b does not store qcow2 \(it takes raw, vmdk\)/,
  );
  assert.throws(
    () => planTransfer(facts(migrate({ format: "floppy" }), "raw", { destinationFormats: ["floppy"] })),
    /unknown format "floppy"/,
  );
});

test("temporary space by guest data: what the preflight asks once an open source tells how much it holds", () => {
  // A 1 GiB compressed qcow2 holding 5 GiB: the plan's estimate is the stored size; the data is what is written.
  const toVdi = planTransfer(facts(migrate({ format: "vdi" }), "qcow2"));
  assert.equal(toVdi.temporaryBytes, temporarySpace(toVdi, GiB, GiB), "the plan is the same rule with the estimate");
  assert.equal(temporarySpace(toVdi, GiB, 5 * GiB), 5 * GiB, "the compact temporary vdi holds the guest data");
  const cleaned = planTransfer(facts(migrate({ format: "qcow2" }, true), "qcow2"));
  assert.equal(temporarySpace(cleaned, GiB, 5 * GiB), 10 * GiB, "working copy + compact output, each the data");
  // A download keeps the stored bytes; a stream into the upload takes nothing.
  const downloaded = planTransfer(facts(migrate({ format: "vdi" }), "iso"));
  assert.equal(temporarySpace(downloaded, GiB, 5 * GiB), 6 * GiB);
  assert.equal(temporarySpace(planTransfer(facts(migrate({ format: "raw" }), "qcow2")), GiB, 5 * GiB), 0);
});

test("whether the output streams into the upload is the driver's answer for the options an importer gets", () => {
  const targetAccess = (format: string) => planTransfer(facts(migrate({ format }), "qcow2")).targetAccess;
  // raw and streamOptimized VMDK write in order; a VHD (dynamic unless asked) and a VDI (dynamic) seek.
  assert.deepEqual(["raw", "vmdk", "vhd", "vdi"].map(targetAccess), [
    "stream",
    "stream",
    "temporary-file",
    "temporary-file",
  ]);
  for (const importer of ["cloud", "vmware", "aws"]) {
    assert.deepEqual(createOptionsFor("vmdk", importer), { subformat: "streamOptimized" }, importer);
    assert.deepEqual(createOptionsFor("vhd", importer), {}, importer);
  }
  assert.deepEqual(createOptionsFor("vmdk", "virtualbox"), {});
  assert.deepEqual(createOptionsFor("vmdk", undefined), {});
});

test("bootable: never a passthrough, the source as a file, two raw disks of temporary space", () => {
  const always: JobRequest = { ...migrate(), bootable: { when: "always" } };
  // Same format, but the disk is rewritten: a conversion from a downloaded file (the step mounts a file).
  const p = planTransfer(facts(always, "qcow2"));
  assert.deepEqual(
    [p.mode, p.bootable, p.sourceAccess, p.targetAccess, p.temporaryBytes],
    ["convert", true, "download", "temporary-file", GiB + 2 * GiB + GiB],
  );
  assert.ok(p.notes.includes("made bootable on a PC first, in a raw working disk"));
  // The local store's file is read in place: only the two raw disks and the compact output.
  const local = planTransfer(facts(always, "qcow2", { sourceLocalAllocated: 100 * MiB }));
  assert.deepEqual([local.sourceAccess, local.temporaryBytes], ["local-file", 3 * 100 * MiB]);
  // With cleaning, the cleaned working copy is the step's input.
  const cleaned = planTransfer(facts({ ...always, clean: {} }, "raw"));
  assert.deepEqual([cleaned.mode, cleaned.sourceAccess, cleaned.bootable], ["clean", "stream", true]);
});

test("migrate's default: bootable only when the source store marks the image as a Xen guest", () => {
  const auto: JobRequest = { ...migrate(), bootable: { when: "xen-source" } };
  const plain = planTransfer(facts(auto, "qcow2"));
  assert.deepEqual([plain.mode, plain.bootable], ["passthrough", undefined]);
  const xen = planTransfer({ ...facts(auto, "qcow2"), source: { format: "qcow2", size: GiB, xenGuest: true } });
  assert.deepEqual([xen.mode, xen.bootable], ["convert", true]);
  assert.ok(xen.notes.some((n) => /Xen guest: made bootable on a PC first \(--no-bootable/.test(n)));
  // --no-bootable: no bootable request at all.
  const off = planTransfer({ ...facts(migrate(), "qcow2"), source: { format: "qcow2", size: GiB, xenGuest: true } });
  assert.equal(off.mode, "passthrough");
});
