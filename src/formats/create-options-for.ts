/**
 * The library's types for create options, read off the built-in drivers' schemas: for each writable format
 * name (aliases included) the options its schema accepts, so a misspelt key or an unknown value fails to
 * compile where the format is written out. A format only known at run time (a string) takes any options,
 * which the driver then checks.
 */
import type * as z from "zod";
import type { CreateOptions, CreateOptionsSchema } from "./types.js";
import type { BuiltInDriver } from "./registry.js";

type SchemaOf<D> = D extends { readonly createOptions: () => Promise<infer S extends CreateOptionsSchema> } ? S : never;
type NamesOf<D> = D extends { readonly name: infer N extends string }
  ? N | (D extends { readonly aliases: readonly (infer A extends string)[] } ? A : never)
  : never;

/** Each writable built-in format's name and aliases, to the options it takes: `{ qcow2: { cluster_size?: … } … }`. */
export type CreateOptionsByFormat = {
  readonly [D in BuiltInDriver as [SchemaOf<D>] extends [never] ? never : NamesOf<D>]: Readonly<z.input<SchemaOf<D>>>;
};

/** The names of the formats chromogenic writes. */
export type WritableFormat = keyof CreateOptionsByFormat;

/** The create options `format` takes; any options for a format only known at run time. */
export type CreateOptionsFor<F extends string> = F extends WritableFormat ? CreateOptionsByFormat[F] : CreateOptions;

/** An output format with its create options, in a request: checked against that format's schema when it is written out. */
export interface OutputFormatChoice<F extends string> {
  readonly outputFormat: F;
  readonly createOptions?: CreateOptionsFor<F>;
}
