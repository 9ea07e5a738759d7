/**
 * VHD's cylinder/head/sector geometry. Virtual PC derives the disk size the guest sees from the footer's
 * geometry, not from its current size, and computes the geometry from a sector count with the algorithm in the
 * specification's appendix, which rounds down: a disk created "with N bytes" is usually a little smaller as a
 * geometry. Writers that want a size Virtual PC reproduces exactly round the size up to a geometry first.
 */

export interface ChsGeometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** The largest geometry the footer can hold (65535 × 16 × 255 sectors, about 127 GiB). */
export const MAX_CHS_GEOMETRY: ChsGeometry = { cylinders: 65535, heads: 16, sectorsPerTrack: 255 };
export const MAX_CHS_SECTORS = 65535 * 16 * 255;

export function chsSectors(g: ChsGeometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack;
}

export function isMaxGeometry(g: ChsGeometry): boolean {
  return chsSectors(g) === MAX_CHS_SECTORS;
}

export function formatGeometry(g: ChsGeometry): string {
  return `${g.cylinders}/${g.heads}/${g.sectorsPerTrack}`;
}

/**
 * The specification's geometry for a sector count (appendix "CHS Calculation"): 17, 31 or 63 sectors per track
 * with 4..16 heads for disks up to 65535 × 16 × 63 sectors, 255 sectors per track and 16 heads above that.
 * The product never exceeds `totalSectors`.
 */
export function geometryForSectors(totalSectors: number): ChsGeometry {
  const total = Math.min(totalSectors, MAX_CHS_SECTORS);
  let sectorsPerTrack: number;
  let heads: number;
  let cylindersTimesHeads: number;
  if (total >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylindersTimesHeads = Math.floor(total / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylindersTimesHeads = Math.floor(total / sectorsPerTrack);
    heads = Math.max(4, Math.floor((cylindersTimesHeads + 1023) / 1024));
    if (cylindersTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylindersTimesHeads = Math.floor(total / sectorsPerTrack);
    }
    if (cylindersTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylindersTimesHeads = Math.floor(total / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylindersTimesHeads / heads), heads, sectorsPerTrack };
}

/**
 * The smallest specification geometry covering at least `sectors` sectors, as Virtual PC (and qemu without
 * force_size) would size a new disk, or the maximum geometry when none does (disks above about 127 GiB).
 * The algorithm is not monotonic near its 17/31/63 switch points, hence the search upward; the gap to the next
 * covering geometry is at most a few thousand sectors.
 */
export function geometryCovering(sectors: number): ChsGeometry {
  if (sectors > MAX_CHS_SECTORS) return MAX_CHS_GEOMETRY;
  for (let candidate = sectors; candidate <= MAX_CHS_SECTORS; candidate++) {
    const g = geometryForSectors(candidate);
    if (chsSectors(g) >= sectors) return g;
  }
  return MAX_CHS_GEOMETRY;
}
