import * as ImagePicker from 'expo-image-picker';

import type { PhotoFile } from '../api/types';

export type PickOutcome = { kind: 'picked'; photos: PhotoFile[] } | { kind: 'cancelled' } | { kind: 'denied' };

function toPhoto(asset: ImagePicker.ImagePickerAsset, index: number): PhotoFile {
  const type = asset.mimeType ?? 'image/jpeg';
  const extension = type.split('/')[1] ?? 'jpg';
  return {
    uri: asset.uri,
    name: asset.fileName ?? `photo-${index + 1}.${extension}`,
    type,
    file: asset.file ?? undefined,
  };
}

/** Take a photo with the camera or choose from the library (several when `multiple`). */
export async function pickPhotos(source: 'camera' | 'library', multiple = false): Promise<PickOutcome> {
  const permission =
    source === 'camera'
      ? await ImagePicker.requestCameraPermissionsAsync()
      : await ImagePicker.requestMediaLibraryPermissionsAsync();
  if (!permission.granted) return { kind: 'denied' };
  const options: ImagePicker.ImagePickerOptions = {
    mediaTypes: ['images'],
    quality: 0.9,
    allowsMultipleSelection: multiple,
    selectionLimit: multiple ? 8 : 1,
  };
  const result =
    source === 'camera'
      ? await ImagePicker.launchCameraAsync(options)
      : await ImagePicker.launchImageLibraryAsync(options);
  if (result.canceled || result.assets.length === 0) return { kind: 'cancelled' };
  return { kind: 'picked', photos: result.assets.map(toPhoto) };
}
