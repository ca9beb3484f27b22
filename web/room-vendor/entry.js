// The imaging viewer's DICOM library: dwv with its dependencies, bundled
// into one ES module so the page needs no import map.
export * from "dwv";
