/**
 * chromogenic's library API. The CLI is a thin layer over these functions; everything it can do,
 * a program can do with the same options and progress events.
 */
export type * from "./formats/types.js";
export type {
  CreateOptionsFor,
  CreateOptionsByFormat,
  WritableFormat,
  OutputFormatChoice,
} from "./formats/create-options-for.js";
export * from "./formats/errors.js";
export { listDrivers, getDriver, detectFormat, registerDriver } from "./formats/registry.js";
export { openImage, type OpenedImage } from "./formats/engine/open-image.js";
export { imageInfo } from "./formats/engine/image-info.js";
export {
  convertImage,
  convertFile,
  type ConvertFileRequest,
  type ConvertFileResult,
  type ConvertStats,
  type PipelineOptions,
} from "./formats/engine/convert.js";
export { parseCreateOptions } from "./formats/engine/create-options.js";
export type { ProgressEvent, ProgressListener } from "./formats/engine/progress.js";
export { StreamOutputFile, type OutputFile, type FileOutput } from "./formats/io/output-file.js";
export { TemporaryOutputFile } from "./formats/io/replacing-output.js";
export { openOutputFile, type OpenOutputOptions } from "./formats/io/open-output.js";
export { diskDigest } from "./formats/engine/disk-digest.js";
export { runDemo } from "./workflows/demo.js";
export { makeSampleImage } from "./workflows/sample-image.js";
export type * from "./providers/provider.js";
export { loadCloudConfig, type CloudConfig, type LoadCloudConfigOptions } from "./providers/openstack/cloud-config.js";
export { KeystoneSession } from "./providers/openstack/keystone-session.js";
export { GlanceClient } from "./providers/openstack/glance-client.js";
export { downloadImage as downloadGlanceImage } from "./providers/openstack/image-download.js";
export { OpenStackProvider } from "./providers/openstack/openstack-provider.js";
export * from "./providers/openstack/errors.js";
export { cleanImage, type CleanImageOptions } from "./operations/cleaning/clean-image.js";
export type { CleaningChange, CleaningReport, CleaningAction } from "./operations/cleaning/cleaning-report.js";
export type { CleaningOperation } from "./operations/cleaning/cleaning-operation.js";
export { CLEANING_OPERATIONS } from "./operations/cleaning/operation-registry.js";
export { planCleaning, runCleaning, type CleaningPlan, type CleaningRun } from "./operations/cleaning/run-cleaning.js";
export { loadProfile, type CleaningProfile } from "./operations/cleaning/cleaning-profile.js";
export { startJob, resumeJob, JobInterruptedError, type JobContext, type JobResult } from "./workflows/image-job.js";
export { listJobs, loadJob, type JobRequest, type JobPlan, type JobState } from "./workflows/job-state.js";
export { planTransfer, type PlanFacts } from "./workflows/job-plan.js";
export { resolveCloud, listClouds, type ConfiguredCloud } from "./workflows/cloud-names.js";
export type { WorkflowEvent, WorkflowListener, WorkflowPhase } from "./workflows/workflow-events.js";
export { LocalProvider } from "./providers/local/local-provider.js";
