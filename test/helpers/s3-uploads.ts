/** The multipart uploads in progress in a bucket (ListMultipartUploads), for tests that check none is left. */
import { ListMultipartUploadsCommand, type ListMultipartUploadsCommandOutput } from "@aws-sdk/client-s3";
import type { S3Connection } from "../../src/providers/ec2/s3-connection.js";
import { abortMultipartUpload } from "../../src/providers/ec2/s3-multipart-upload.js";

export async function multipartUploadsIn(
  s3: S3Connection,
  bucket: string,
): Promise<{ key: string; uploadId: string }[]> {
  const out = await s3.send<ListMultipartUploadsCommandOutput>(new ListMultipartUploadsCommand({ Bucket: bucket }), {
    call: "ListMultipartUploads",
  });
  return (out.Uploads ?? []).map((u) => ({ key: u.Key ?? "", uploadId: u.UploadId ?? "" }));
}

export async function abortMultipartUploadsIn(s3: S3Connection, bucket: string): Promise<void> {
  for (const u of await multipartUploadsIn(s3, bucket)) await abortMultipartUpload(s3, { bucket, ...u });
}
