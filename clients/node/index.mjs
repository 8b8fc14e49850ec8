// The ES module face of the CommonJS package: `import seqgen from 'seqgen'`.
import seqgen from './index.js';

export default seqgen;
export const {
  Client,
  SeqgenError,
  codes,
  DEFAULT_ENDPOINT,
  ENDPOINTS_ENV,
  MAX_VALUE,
  MAX_COUNT,
  MAX_NAME_BYTES,
} = seqgen;
