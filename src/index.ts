/**
 * chromogenic's library API. The CLI is a thin layer over these functions; everything it can do, a program can
 * do with the same options and events. docs/LIBRARY.md has an example of each capability (and a test compiles
 * and runs every one of them).
 */

// ── Disk images: formats, inspection of a file, conversion ────────────────────────────────────────────────
export type * from "./formats/types.js";
export type {
  CreateOptionsFor,
  CreateOptionsByFormat,
  WritableFormat,
  OutputFormatChoice,
} from "./formats/create-options-for.js";
export * from "./util/errors.js";
export * from "./formats/errors.js";
export { listDrivers, getDriver, detectFormat, registerDriver } from "./formats/registry.js";
export { openImage, type OpenedImage, type ImageLocation, type OpenImageOptions } from "./formats/engine/open-image.js";
export type { ImageInput } from "./formats/inputs/image-input.js";
export { imageInfo, type ImageInfo, type ImageInfoOptions, type DiskImageInfo } from "./formats/engine/image-info.js";
export {
  convertImage,
  convertFile,
  type ConvertFileRequest,
  type ConvertFileResult,
  type ConvertStats,
  type PipelineOptions,
} from "./formats/engine/convert.js";
export { parseCreateOptions } from "./formats/engine/create-options.js";
export {
  EventSchema,
  PHASES,
  type ChromogenicEvent,
  type WorkEvent,
  type WorkListener,
  type ProgressEvent,
  type ProgressListener,
  type PhaseEvent,
  type StepEvent,
  type MessageEvent,
  type JobEvent,
  type DoneEvent,
  type ErrorEvent,
  type Phase,
} from "./util/events.js";
export { StreamOutputFile, type OutputFile, type FileOutput } from "./formats/io/output-file.js";
export { TemporaryOutputFile } from "./formats/io/replacing-output.js";
export { openOutputFile, type OpenOutputOptions } from "./formats/io/open-output.js";
export { diskDigest } from "./formats/engine/disk-digest.js";

// ── OVA: export, reading, information (imageInfo and convertFile recognise an OVA themselves) ────────────
export {
  exportOva,
  type OvaExportRequest,
  type OvaExportResult,
  type OvaInput,
  type OvaMemberReport,
} from "./formats/ova/ova-writer.js";
export { OVA_TARGETS, type OvaTargetName, type OvfVersion } from "./formats/ova/ova-targets.js";
export {
  NIC_MODELS,
  CONTROLLER_MODELS,
  OS_TYPE_NAMES,
  type NicModel,
  type ControllerModel,
  type OsTypeName,
} from "./formats/ova/hardware-profile.js";
export { MANIFEST_ALGORITHMS, type ManifestAlgorithm } from "./formats/ova/manifest.js";
export {
  openOva,
  verifyOvaManifest,
  type OvaArchive,
  type OvaDisk,
  type ManifestCheck,
} from "./formats/ova/ova-reader.js";
export { ovaInfo, type OvaInfo } from "./formats/ova/ova-info.js";
export type { OvaConvertResult } from "./formats/ova/ova-convert.js";
export type { OvfDescriptor, OvfDisk, OvfFileRef, OvfVirtualSystem } from "./formats/ova/ovf-descriptor-reader.js";

// ── Image bundles (Eucalyptus/EC2 instance-store): write, read, the manifest, where the files live ─────────
export type { BundleStore } from "./formats/bundle/bundle-store.js";
export { DirectoryBundleStore } from "./formats/bundle/directory-bundle-store.js";
export { writeBundle, type WriteBundleRequest, type WriteBundleResult } from "./formats/bundle/write-bundle.js";
export { readBundle, type ReadBundleRequest, type ReadBundleResult } from "./formats/bundle/read-bundle.js";
export { openBundleManifest, type OpenedBundleManifest } from "./formats/bundle/open-bundle-manifest.js";
export { verifiedImageBytes } from "./formats/bundle/bundle-image-stream.js";
export {
  BUNDLE_PART_SIZE,
  bundleManifestName,
  bundlePartName,
  type BundleManifest,
  type BundleImageType,
  type BundlePart,
  type ParsedBundleManifest,
} from "./formats/bundle/bundle-manifest.js";
export { parseBundleManifest } from "./formats/bundle/manifest-parser.js";
export { parseBlockDeviceMappings } from "./formats/bundle/block-device-mappings.js";
export { openBundleSource, type BundleSourceOptions } from "./formats/bundle/bundle-source.js";
export {
  readPrivateKey,
  readPublicKey,
  randomBundleSecret,
  bundleSecretFromHex,
  type BundleSecret,
} from "./formats/bundle/bundle-keys.js";

// ── Guests: read-only inspection, sessions, leftovers of killed runs (root: loop devices and mounts) ──────
export { inspectImage, type InspectImageOptions, type ImageInspection } from "./guest/inspect/inspect-image.js";
export { inspectGuest, type GuestInspection } from "./guest/inspect/inspect-guest.js";
export type { Distribution, DistributionFamily } from "./guest/inspect/distribution.js";
export type { PackageManager, InitSystem } from "./guest/inspect/system-tools.js";
export type { InstalledKernel } from "./guest/inspect/boot-files.js";
export type { GuestUser } from "./guest/inspect/guest-users.js";
export { openGuest, type OpenGuestOptions, type GuestSession, type CommitOptions } from "./guest/guest-session.js";
export type { AttachedImage, GuestBlockDevice } from "./guest/attach/attach-image.js";
export { NoGuestRootError, type MountedGuest, type MountedFilesystem } from "./guest/mount/mount-guest.js";
export { GuestPathError } from "./guest/guest-path.js";
export {
  cleanupGuestLeftovers,
  type LeftoverCleanupOptions,
  type LeftoverJournal,
} from "./guest/journal/leftover-cleanup.js";

// ── Cleaning ──────────────────────────────────────────────────────────────────────────────────────────────
export { cleanImage, type CleanImageOptions } from "./operations/cleaning/clean-image.js";
export type { CleaningChange, CleaningReport, CleaningAction } from "./operations/cleaning/cleaning-report.js";
export type { CleaningOperation } from "./operations/cleaning/cleaning-operation.js";
export { CLEANING_OPERATIONS } from "./operations/cleaning/operation-registry.js";
export { planCleaning, runCleaning, type CleaningPlan, type CleaningRun } from "./operations/cleaning/run-cleaning.js";
export { loadProfile, type CleaningProfile } from "./operations/cleaning/cleaning-profile.js";

// ── Bootable disks ───────────────────────────────────────────────────────────────────────────────────────
export { makeBootable, type BootableRequest, type BootableReport } from "./workflows/bootable.js";
export type { GuestEdits, GuestEditContext, GuestEditResult, GuestEditChange } from "./operations/boot/guest-edits.js";
export { NotBootableError } from "./operations/boot/boot-errors.js";

// ── Xen → KVM ────────────────────────────────────────────────────────────────────────────────────────────
export { xenToKvmStep, type XenToKvmOptions, type XenToKvmStep } from "./workflows/xen-to-kvm-step.js";
export { convertXenGuest, type XenConversionReport } from "./operations/conversion/convert-xen-guest.js";
export { rebuildConvertedInitramfs } from "./operations/conversion/rebuild-initramfs.js";
export { detectXenGuest } from "./operations/conversion/xen-guest.js";
export { exportBootableOva, type BootableOvaRequest, type BootableOvaResult } from "./workflows/bootable-export.js";
export type { BootableOptions } from "./workflows/bootable-step.js";

// ── Image stores: OpenStack and the local store ──────────────────────────────────────────────────────────
export type * from "./providers/provider.js";
export { loadCloudConfig, type CloudConfig, type LoadCloudConfigOptions } from "./providers/openstack/cloud-config.js";
export { KeystoneSession } from "./providers/openstack/keystone-session.js";
export { GlanceClient } from "./providers/openstack/glance-client.js";
export { downloadImage as downloadGlanceImage } from "./providers/openstack/image-download.js";
export { OpenStackProvider } from "./providers/openstack/openstack-provider.js";
export * from "./providers/openstack/errors.js";
export { ImportMethodUnavailableError, ImportFailedError } from "./providers/openstack/glance-image-import.js";
export { LocalProvider, LocalImageError } from "./providers/local/local-provider.js";
export { isXenGuestImage, withoutXenProperties } from "./providers/xen-guest-image.js";

// ── Workflows: jobs (image create, export from a store, migrate), resume, the stores a name reaches ───────
export { startJob, resumeJob, JobInterruptedError, type JobContext, type JobResult } from "./workflows/image-job.js";
export {
  listJobs,
  loadJob,
  currentStatus,
  type BootableSummary,
  type JobRequest,
  type JobPlan,
  type JobState,
} from "./workflows/job-state.js";
export { planTransfer, type PlanFacts } from "./workflows/job-plan.js";
export {
  resolveCloud,
  listClouds,
  defaultLocalStore,
  type ConfiguredCloud,
  type CloudNameOptions,
} from "./workflows/cloud-names.js";
export { InsufficientSpaceError } from "./workflows/preflight.js";
export { GuestAccessError } from "./guest/guest-access-error.js";
export { runDemo, type DemoResult, type DemoExport } from "./workflows/demo.js";
export { makeSampleImage, type SampleImage } from "./workflows/sample-image.js";
